"""The knowledge's out-of-scope questions (`out_of_scope.txt`) at query time: a question nearer
one of them than to any card's text is not answered. Calibration learns from them too, but only
as a tendency; a line written there must also be refused when it, or something close to it, is
asked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.embedding.embedder import Vectors

# How much nearer (cosine) the out-of-scope line must be than the nearest card text. On the
# development sets (766 questions) 0.02 refused 5 wrong answers and no right one; 0 also
# refused 2 right ones.
MARGIN = 0.02
# And how near it must be at all: a line that is merely the least unlike the question is not
# named as what it asked ("loyalty points for this order" was named after "pick up the order
# in store" at 0.5). The 5 wrong answers it refused were all at 0.62 or more.
NEAR = 0.6
# A question marked out of scope as near a card's text as this is refused unless forced: as a
# line it would refuse questions meant for the card. Taught all 130 out-of-scope questions of
# the dev set, this rule cost the other development sets 27 right answers for 4 wrong ones
# refused; taught the 30 below 0.5, none (most of the rest were a card's question under a
# condition the card does not apply to, which the conditions refuse already).
SIBLING = 0.5


@dataclass(frozen=True)
class Nearest:
    line: str
    cosine: float

    def refuses(self, nearest_card: float) -> bool:
        """Whether the line is near, and enough nearer than the nearest card's text
        (`nearest_card`)."""
        return self.cosine >= max(NEAR, nearest_card + MARGIN)


@dataclass(frozen=True)
class OutOfScope:
    lines: tuple[str, ...]
    vectors: npt.NDArray[np.float32] | None  # a unit vector per line, in order

    def nearest(self, query: Vectors) -> Nearest | None:
        if self.vectors is None or not self.lines:
            return None
        cosines = self.vectors @ query
        best = int(np.argmax(cosines))
        return Nearest(self.lines[best], float(cosines[best]))
