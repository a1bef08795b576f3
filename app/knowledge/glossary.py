"""Domain abbreviations (OOS, PO, SKU, ...) spelled out beside themselves before embedding.

The same expansion runs on indexed texts and on queries, so "PO stuck OOS" and
"purchase order out of stock" land near each other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class Glossary:
    def __init__(self, terms: Mapping[str, str]) -> None:
        self.terms = {key.casefold(): value for key, value in terms.items()}
        if self.terms:
            alternation = "|".join(re.escape(k) for k in sorted(self.terms, key=len, reverse=True))
            self._pattern: re.Pattern[str] | None = re.compile(
                rf"(?<![\w-])({alternation})(?![\w-])", re.IGNORECASE
            )
        else:
            self._pattern = None

    def expand(self, text: str) -> str:
        """'PO stuck' -> 'PO (purchase order) stuck'; words already followed by their
        expansion are left alone."""
        if self._pattern is None:
            return text

        def spell_out(match: re.Match[str]) -> str:
            expansion = self.terms[match.group(1).casefold()]
            following = text[match.end() : match.end() + len(expansion) + 3].casefold()
            if expansion.casefold() in following:
                return match.group(0)
            return f"{match.group(0)} ({expansion})"

        return self._pattern.sub(spell_out, text)
