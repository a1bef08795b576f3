from __future__ import annotations

import math
from pathlib import Path

import pytest

from app.index.build import build_index
from app.knowledge.playbook import KnowledgeBase
from app.ranking.answers import to_answer, to_matches
from app.ranking.calibration import Calibration
from app.ranking.out_of_scope import MARGIN, NEAR, Nearest
from app.ranking.ranker import Ranker, Scored
from app.records import Entry, confidence_band
from tests.fakes import FakeEmbedder

CALIBRATION = Calibration(intercept=-5.0, weight_score=10.0, weight_margin=10.0, threshold=0.5,
                          ambiguity_margin=0.05)
A, B, C = (Entry(x, f"question {x}", f"answer {x}") for x in "abc")


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_top_confidence_uses_score_and_margin_and_the_rest_share_the_remainder() -> None:
    answer = to_answer("q", [Scored(A, 0.8, "t"), Scored(B, 0.5, "t"), Scored(C, 0.4, "t")],
                       CALIBRATION, alternatives=2)
    assert answer.matched and not answer.ambiguous
    assert answer.best is not None and answer.best.entry == A
    top = _sigmoid(-5 + 8 + 3)
    assert answer.best.confidence == pytest.approx(top)
    assert [(m.entry, m.confidence) for m in answer.alternatives] == [
        (B, pytest.approx(_sigmoid(-5 + 5 - 3) * (1 - top))),
        (C, pytest.approx(_sigmoid(-5 + 4 - 4) * (1 - top)))]


def test_alternatives_never_claim_more_than_the_top_entry_leaves() -> None:
    close = [Scored(A, 0.9, "t"), Scored(B, 0.89, "t"), Scored(C, 0.88, "t")]
    matches = to_matches(close, CALIBRATION)
    alone = [_sigmoid(-5 + 8.9 - 0.1), _sigmoid(-5 + 8.8 - 0.2)]
    remainder = 1 - _sigmoid(-5 + 9 + 0.1)
    assert [m.confidence for m in matches[1:]] == [
        pytest.approx(a * remainder / sum(alone)) for a in alone]
    assert sum(m.confidence for m in matches) == pytest.approx(1.0)


def test_below_threshold_is_no_confident_match_with_suggestions() -> None:
    answer = to_answer("q", [Scored(A, 0.45, "t"), Scored(B, 0.44, "t")], CALIBRATION, 3)
    assert (answer.matched, answer.best, answer.ambiguous) == (False, None, True)
    assert [m.entry for m in answer.alternatives] == [A, B]
    assert answer.confidence == pytest.approx(_sigmoid(-5 + 4.5 + 0.1))


def test_a_close_runner_up_makes_a_medium_answer_ambiguous() -> None:
    answer = to_answer("q", [Scored(A, 0.57, "t"), Scored(B, 0.56, "t")], CALIBRATION, 1)
    assert (answer.matched, round(answer.confidence, 4), answer.ambiguous) == (True, 0.6900, True)


def test_an_ambiguous_answer_never_shows_high_confidence() -> None:
    # Calibrated alone it would read 99 %; two entries fitting almost equally make it medium.
    answer = to_answer("q", [Scored(A, 0.95, "t"), Scored(B, 0.93, "t")], CALIBRATION, 1)
    assert (answer.matched, answer.confidence, answer.ambiguous) == (True, 0.79, True)
    assert confidence_band(answer.confidence) == "medium"


def test_no_card_of_a_vague_question_claims_more_than_its_share() -> None:
    # Five cards contain every word of the question: none is answered, none claims over 1/5.
    five = ("a", "b", "x", "y", "z")
    answer = to_answer("q", [Scored(A, 0.5, "t"), Scored(B, 0.49, "t")], CALIBRATION, 2,
                       vague=five)
    assert (answer.matched, answer.ambiguous) == (False, True)
    assert [round(m.confidence, 4) for m in answer.alternatives] == [0.2, 0.2]
    # A share of two cards is the threshold itself: a question not answered stays below it.
    answer = to_answer("q", [Scored(A, 0.95, "t"), Scored(B, 0.7, "t")], CALIBRATION, 2,
                       vague=("a", "b"))
    assert (answer.matched, [round(m.confidence, 4) for m in answer.alternatives]) == (
        False, [0.49, 0.49])


def test_the_cards_a_vague_question_cannot_tell_apart_are_suggested_first_and_alike() -> None:
    # C is ranked second but does not hold the question's words; B, ranked third, does.
    ranked = [Scored(A, 0.9, "t"), Scored(C, 0.8, "t"), Scored(B, 0.6, "t")]
    answer = to_answer("q", ranked, CALIBRATION, 3, vague=("a", "b"))
    assert [(m.entry.id, round(m.confidence, 4)) for m in answer.alternatives] == [
        ("a", 0.49), ("b", 0.49), ("c", 0.0059)]
    # Far from every card, they are as unlikely as the top one.
    far = [Scored(A, 0.3, "t"), Scored(B, 0.29, "t")]
    top = to_matches(far, CALIBRATION)[0].confidence
    assert round(top, 4) == 0.1301
    assert [m.confidence for m in to_answer("q", far, CALIBRATION, 2, vague=("a", "b")).alternatives] == [
        top, top]


def test_a_question_stating_a_ruled_out_cards_circumstances_is_not_answered_by_another() -> None:
    from app.knowledge.conditions import Condition, Mention, Slot

    vendor = Slot("vendor", "choice", "vendor", noun="orders", values={"Amazon": (), "Target": ()})
    option = Slot("cancel_option", "choice", "order",
                  values={"without a cancel option": (), "with a cancel option": ()})
    amazon = Entry("amazon", "amazon, no cancel option", "too late",
                   conditions=(Condition(vendor, "in", ("Amazon",)),
                               Condition(option, "in", ("without a cancel option",))))
    target = (Mention("vendor", "Target", "Target"),
              Mention("cancel_option", "without a cancel option", "no cancel option"))
    ranked = [Scored(A, 0.9, "t"), Scored(amazon, 0.85, "t"), Scored(B, 0.2, "t")]
    # "Target order, no cancel option": the Amazon card's subject on another vendor's order.
    answer = to_answer("q", ranked, CALIBRATION, 2, mentions=target)
    assert (answer.matched, answer.best) == (False, None)
    assert [r.match.entry.id for r in answer.ruled_out] == ["amazon"]
    assert [m.entry.id for m in answer.alternatives] == ["a", "b"]
    assert answer.alternatives[0].confidence == pytest.approx(0.49)  # just below the threshold
    # Ruled out on the vendor alone, stating none of its circumstances, it claims nothing.
    vendor_only = to_answer("q", ranked, CALIBRATION, 2, mentions=target[:1])
    assert vendor_only.best is not None and vendor_only.best.entry.id == "a"
    # Ranked below the top two, it does not claim the subject either.
    far = [Scored(A, 0.9, "t"), Scored(B, 0.5, "t"), Scored(amazon, 0.45, "t")]
    assert to_answer("q", far, CALIBRATION, 2, mentions=target).matched


def test_nothing_to_rank() -> None:
    answer = to_answer("q", [], CALIBRATION, 3)
    assert (answer.matched, answer.best, answer.alternatives, answer.confidence) == (
        False, None, (), 0.0)


def test_wider_search_when_one_entry_crowds_out_the_rest(
    tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.ranking.ranker.EXHAUSTIVE_ROWS", 10)
    monkeypatch.setattr("app.ranking.ranker.SEARCH_ROWS", 1)
    crowd = Entry("cancel", "cancel the order", "a",
                  alternates=tuple(f"cancel the order now {i}" for i in range(40)))
    others = (Entry("sla", "shipping sla days", "b"), Entry("addr", "change address", "c"))
    index = build_index(KnowledgeBase(entries=(crowd, *others)), fake_embedder, tmp_path)
    ranker = Ranker(index, (crowd, *others))
    ranked = ranker.rank(fake_embedder.encode(["cancel the order"])[0], limit=3)
    assert [r.entry.id for r in ranked] == ["cancel", "sla", "addr"]


def test_a_question_nearer_an_out_of_scope_line_than_any_card_is_refused_naming_it() -> None:
    ranked = [Scored(A, 0.95, "t", cosine=0.80), Scored(B, 0.5, "t", cosine=0.5)]
    plain = to_answer("q", ranked, CALIBRATION, 2)
    assert plain.matched and plain.best is not None and plain.best.confidence > 0.99
    refused = to_answer("q", ranked, CALIBRATION, 2,
                        out_of_scope=Nearest("what is the weather", 0.83))
    assert (refused.matched, refused.best, refused.out_of_scope) == (
        False, None, "what is the weather")
    # The cards stay suggestions, below the threshold (0.5).
    assert [(m.entry, m.confidence) for m in refused.alternatives] == [
        (A, 0.49), (B, plain.alternatives[0].confidence)]
    # The line must be MARGIN nearer than the nearest card's text (its cosine, not its score).
    answered = to_answer("q", ranked, CALIBRATION, 2,
                         out_of_scope=Nearest("what is the weather", 0.8 + MARGIN - 0.001))
    assert answered == plain
    # A line far from the question is not what it asked, however far the cards are.
    far = [Scored(A, 0.95, "t", cosine=0.30), Scored(B, 0.5, "t", cosine=0.2)]
    assert to_answer("q", far, CALIBRATION, 2, out_of_scope=Nearest("x", NEAR - 0.01)) == (
        to_answer("q", far, CALIBRATION, 2))
