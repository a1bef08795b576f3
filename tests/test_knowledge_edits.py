"""Knowledge edits that several processes make at once lose nothing, keep the file as written,
and never make two entries compete."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from app.config import Settings
from app.engine.engine import Engine
from app.errors import AlternateConflict
from app.knowledge.editing import with_out_of_scope
from app.knowledge.playbook import load_knowledge
from tests.fakes import FakeEmbedder

PROCESSES = 4
ADDS_EACH = 3


def add_from_another_process(settings: Settings, worker: int) -> None:
    engine = Engine(settings, FakeEmbedder())
    engine.load()
    for n in range(ADDS_EACH):
        engine.add_alternate("cancel-order", f"cancel order variant {worker} {n}", force=True)


def test_concurrent_adds_from_several_processes_are_all_kept(tiny_settings: Settings) -> None:
    Engine(tiny_settings, FakeEmbedder()).load()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=add_from_another_process, args=(tiny_settings, w))
               for w in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    entry = load_knowledge(tiny_settings.knowledge_dir).entry("cancel-order")
    assert entry is not None
    added = {a for a in entry.alternates if a.startswith("cancel order variant")}
    assert added == {f"cancel order variant {w} {n}"
                     for w in range(PROCESSES) for n in range(ADDS_EACH)}


def test_an_added_alternate_keeps_comments_quotes_and_the_file_mode(tiny_engine: Engine) -> None:
    playbook = tiny_engine.settings.knowledge_dir / "playbook.yaml"
    text = "# Reviewed by the knowledge team.\n" + playbook.read_text(encoding="utf-8").replace(
        "  - stop the order before it ships\n",
        "  - stop the order before it ships  # from a chat transcript\n")
    playbook.write_text(text, encoding="utf-8")
    playbook.chmod(0o644)
    tiny_engine.add_alternate("cancel-order", "#SD cancel the order now", force=True)
    assert playbook.read_text(encoding="utf-8") == text.replace(
        "  - stop the order before it ships  # from a chat transcript\n",
        "  - stop the order before it ships  # from a chat transcript\n"
        "  - '#SD cancel the order now'\n")
    assert stat.S_IMODE(playbook.stat().st_mode) == 0o644
    entry = tiny_engine.entry("cancel-order")
    assert entry.alternates[-1] == "#SD cancel the order now"


def test_a_phrasing_of_another_entry_is_refused(tiny_engine: Engine) -> None:
    before = (tiny_engine.settings.knowledge_dir / "playbook.yaml").read_bytes()
    with pytest.raises(AlternateConflict) as caught:
        tiny_engine.add_alternate("shipping-sla", "Cancel my order, please!", force=True)
    assert str(caught.value) == "'Cancel my order, please!' is already a phrasing of 'cancel-order'"
    assert (tiny_engine.settings.knowledge_dir / "playbook.yaml").read_bytes() == before


def test_a_phrasing_nearer_another_entry_needs_force(tiny_engine: Engine) -> None:
    with pytest.raises(AlternateConflict) as caught:
        tiny_engine.add_alternate("shipping-sla", "stop the order now")
    assert str(caught.value) == (
        "'stop the order now' sits closer to 'cancel-order' (0.61) than to 'shipping-sla' "
        "(0.22): added, it would pull 'cancel-order''s questions away; reword it, or add it "
        "anyway (force)")
    assert tiny_engine.entry("shipping-sla").alternates == (
        "how long does shipping take", "delivery time for most orders")


def test_an_edit_to_a_playbook_without_a_block_list_rewrites_it_whole(
        tmp_path: Path, tiny_settings: Settings) -> None:
    playbook = tiny_settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8").replace(
        "  alternates:\n  - how long does shipping take\n  - delivery time for most orders\n",
        "  alternates: []\n"), encoding="utf-8")
    engine = Engine(tiny_settings, FakeEmbedder())
    engine.load()
    engine.add_alternate("shipping-sla", "shipping sla days please", force=True)
    assert engine.entry("shipping-sla").alternates == ("shipping sla days please",)


def test_out_of_scope_lines_are_appended_once_keeping_the_file() -> None:
    text = "# questions the playbook does not answer\nwhat is the weather tomorrow"
    assert with_out_of_scope(text, ["tell me a joke", "What is the  weather tomorrow",
                                    "tell me a joke"]) == (
        "# questions the playbook does not answer\nwhat is the weather tomorrow\n"
        "tell me a joke\n")
    assert with_out_of_scope("", ["tell me a joke"]) == "tell me a joke\n"
    assert with_out_of_scope("tell me a joke\n", ["Tell me a joke"]) == "tell me a joke\n"
