"""A reload swaps the whole index at once: a request in flight finishes on the old one."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from app.config import Settings
from app.embedding.embedder import Vectors
from app.engine.engine import Engine
from app.records import Answer
from tests.fakes import FakeEmbedder

PROBE = "abort it"


class GatedEmbedder(FakeEmbedder):
    """Holds the first encoding of the probe until released, so a reload happens mid-request."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def encode(self, texts: Sequence[str]) -> Vectors:
        if self.armed and list(texts) == [PROBE]:
            self.armed = False
            self.entered.set()
            assert self.release.wait(10)
        return super().encode(texts)


def _verdict(answer: Answer) -> tuple[bool, str | None, float]:
    return (answer.matched, answer.best.entry.id if answer.best else None,
            round(answer.confidence, 4))


def test_a_request_in_flight_finishes_on_the_old_index(tiny_settings: Settings) -> None:
    embedder = GatedEmbedder()
    engine = Engine(tiny_settings.model_copy(update={"watch_seconds": 0}), embedder)
    engine.load()
    before = _verdict(engine.ask(PROBE))
    in_flight: list[Answer] = []
    embedder.armed = True
    asker = threading.Thread(target=lambda: in_flight.append(engine.ask(PROBE)))
    asker.start()
    assert embedder.entered.wait(10)
    playbook = tiny_settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text().replace(
        "  - cancel my order please\n", f"  - cancel my order please\n  - {PROBE}\n"))
    report = engine.load()  # the swap happens while the request waits inside the encoder
    embedder.release.set()
    asker.join(10)
    assert (report.action, report.reason) == ("built", "the knowledge changed since the index "
                                                        "was built")
    assert before[:2] == (False, None)
    assert [_verdict(a) for a in in_flight] == [before]
    after = _verdict(engine.ask(PROBE))
    assert (after[:2], after != before) == ((True, "cancel-order"), True)
