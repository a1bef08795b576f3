"""The HTML report of `playbook eval --report`: its header, reliability bins with counts and
intervals, the confidence histogram, and misses named by their entries' questions."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.evaluation import provenance
from app.evaluation.metrics import wilson_interval
from app.knowledge.playbook import load_knowledge
from tests.fakes import FakeEmbedder
from tests.test_evaluate import TINY_QUERIES, eval_runner, write_jsonl


@pytest.fixture
def run_cli(tiny_settings: Settings, fake_embedder: FakeEmbedder,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    return eval_runner(tiny_settings, fake_embedder, monkeypatch)


@pytest.fixture
def page(run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(provenance, "now", lambda: datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC))
    monkeypatch.setattr(provenance, "git_commit", lambda folder=None: "abc1234")
    report = tmp_path / "report.html"
    queries = write_jsonl(tmp_path / "queries.jsonl", TINY_QUERIES)
    result = run_cli(str(queries), "--report", str(report))
    assert result.exit_code == 0, result.output
    return report.read_text(encoding="utf-8")


def test_the_header_says_when_and_on_what_it_ran(page: str, tiny_knowledge: Path) -> None:
    digest = load_knowledge(tiny_knowledge).content_hash()[:12]
    assert (
        '<table class="run">'
        "<tr><th>date</th><td>2025-03-04 05:06 UTC</td></tr>"
        "<tr><th>git commit</th><td>abc1234</td></tr>"
        f"<tr><th>knowledge</th><td>{tiny_knowledge}</td></tr>"
        f"<tr><th>knowledge version</th><td>hash {digest}, 3 entries</td></tr>"
        "<tr><th>model</th><td>fake-bag-of-words@1</td></tr>"
        "<tr><th>encoder</th><td>fake</td></tr>"
        "<tr><th>answer threshold</th><td>0.50</td></tr>"
        "</table>"
    ) in page


def test_each_reliability_bin_shows_its_count_and_95_percent_interval(page: str) -> None:
    assert "<tr><td>0.0–0.1</td><td>1</td><td>0.008</td><td>0.000</td><td>0.000–0.793</td></tr>" \
        in page
    assert "<tr><td>0.1–0.2</td><td>0</td><td>-</td><td>-</td><td>-</td></tr>" in page
    assert "<tr><td>0.9–1.0</td><td>3</td><td>0.979</td><td>0.667</td><td>0.208–0.939</td></tr>" \
        in page


def test_the_figures_are_the_reliability_diagram_and_a_confidence_histogram(page: str) -> None:
    assert page.count('src="data:image/png;base64,') == 2
    assert '<img alt="reliability diagram"' in page
    assert '<img alt="histogram of confidence"' in page


def test_misses_name_the_expected_and_returned_entries_by_their_question(page: str) -> None:
    assert (
        "<tr><td>3</td><td>shipping address</td>"
        "<td>shipping-sla<br><small>What is our SLA for shipping most orders</small></td>"
        "<td>change-address<br><small>Customer wants to change the shipping address</small></td>"
        "<td>change-address<br><small>Customer wants to change the shipping address</small></td>"
        "<td>0.945</td></tr>"
    ) in page
    assert "what is the weather" not in page  # refused, as its label says: not a miss


def test_wilson_interval() -> None:
    assert wilson_interval(2, 3) == pytest.approx((0.2077, 0.9385), abs=1e-4)
    assert wilson_interval(0, 1) == pytest.approx((0.0, 0.7935), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_git_commit_is_the_short_head_or_none_outside_git(tmp_path: Path) -> None:
    assert provenance.git_commit(tmp_path) is None
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert provenance.git_commit(tmp_path) == head
