"""What keeps answers trustworthy on questions nobody wrote down: card conditions, long pasted
messages and misspellings (fake embedder: exact, instant)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.engine.engine import Engine
from app.engine.question import clean_question
from app.engine.windows import condensed, windows
from app.knowledge.playbook import Entry
from app.knowledge.spelling import Speller
from app.records import Answer, Match, RuledOut
from app.web.app import create_app
from tests.fakes import FakeEmbedder

SLOTS = """\
vendor:
  kind: choice
  label: vendor
  noun: orders
  unlisted: true
  values:
    Best Buy: [BB]
    Home Depot: []
"""


def conditional_engine(tiny_settings: Settings, fake_embedder: FakeEmbedder) -> Engine:
    """The tiny playbook, with the address card applying to Best Buy orders only."""
    folder = tiny_settings.knowledge_dir
    (folder / "slots.yaml").write_text(SLOTS, encoding="utf-8")
    playbook = folder / "playbook.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8").replace(
        "  tags: [address]\n", "  tags: [address]\n  conditions: {vendor: Best Buy}\n"),
        encoding="utf-8")
    return Engine.open(tiny_settings, fake_embedder)


def test_a_contradicted_card_is_ruled_out_with_the_reason(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    engine = conditional_engine(tiny_settings, fake_embedder)
    answer = engine.ask("update address on order from home depot")
    assert (answer.matched, answer.best) == (False, None)
    assert [(r.match.entry.id, r.match.confidence, r.reason) for r in answer.ruled_out] == [
        ("change-address", 0.0,
         "applies to Best Buy orders; your question mentions Home Depot")]
    assert "change-address" not in [m.entry.id for m in answer.alternatives]


def test_a_vendor_the_slots_do_not_list_rules_out_the_card_by_its_name(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    engine = conditional_engine(tiny_settings, fake_embedder)
    answer = engine.ask("update address on order, the vendor is Zzyzx Home")
    assert (answer.matched, answer.best) == (False, None)
    assert [(r.match.entry.id, r.reason) for r in answer.ruled_out] == [
        ("change-address", "applies to Best Buy orders; your question mentions Zzyzx Home")]


def test_a_card_answers_when_its_condition_holds_or_is_not_mentioned(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    engine = conditional_engine(tiny_settings, fake_embedder)
    for question in ("update address on order from BB", "update address on order"):
        answer = engine.ask(question)
        assert answer.best is not None and answer.best.entry.id == "change-address", question
        assert answer.ruled_out == ()


def test_the_api_names_the_conditions_and_the_ruled_out_card(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    engine = conditional_engine(tiny_settings, fake_embedder)
    client = TestClient(create_app(tiny_settings, engine))
    body = client.post("/api/ask", json={"question": "update address on order from home depot",
                                         "top_k": 1}).json()
    assert (body["matched"], body["applies_when"]) == (False, [])
    assert body["ruled_out"] == [{
        "entry_id": "change-address",
        "source_question": "Customer wants to change the shipping address",
        "macro": "#SD - Too Late - Can't Change Shipping Address (RP)",
        "reason": "applies to Best Buy orders; your question mentions Home Depot"}]
    answered = client.post("/api/ask", json={"question": "update address on order"}).json()
    assert (answered["entry_id"], answered["applies_when"]) == (
        "change-address", ["vendor is Best Buy"])


def test_windows_split_only_a_long_text_into_sentences_and_pairs() -> None:
    assert windows("where is my order?") == ["where is my order?"]
    story = "Hello there team. " * 12 + "My parcel never came at all.\nWhat do I do first now?"
    assert windows(story) == [
        story, "Hello there team.", "My parcel never came at all.", "What do I do first now?",
        "Hello there team. Hello there team.", "Hello there team. My parcel never came at all.",
        "My parcel never came at all. What do I do first now?"]


def test_a_pasted_chat_keeps_its_lines_so_each_line_is_a_sentence() -> None:
    chat = "Customer:  my order never came \r\n\n\n Agent: Sorry!\tWhich order?\nCustomer: 4471 "
    assert clean_question(chat, 4000, lines=True) == (
        "Customer: my order never came\nAgent: Sorry! Which order?\nCustomer: 4471")
    assert clean_question(chat, 4000) == (
        "Customer: my order never came Agent: Sorry! Which order? Customer: 4471")


def test_a_long_text_is_condensed_to_its_two_sentences_nearest_a_card() -> None:
    greeting = "Hello there team, hope all is well with all of you today."
    story = "It was a gift for my mother and her birthday was on the weekend, so she is sad and cross."
    lost, delivered = "My parcel never came at all.", "The tracking says delivered but it is not here."
    ask = "What do I do first now?"
    text = " ".join([greeting, lost, story, delivered, ask])
    card = Entry("lost", "package lost", "send the lost package macro")
    def answered(scores: dict[str, float]) -> dict[str, Answer]:  # the card tops each, ruled out
        return {part: Answer("", False, None, False,
                             ruled_out=(RuledOut(Match(card, score, 0.0, card.question), ()),))
                for part, score in scores.items()}
    scores = {greeting: 0.1, lost: 0.5, story: 0.2, delivered: 0.4, ask: 0.3}
    assert condensed(text, answered(scores)) == f"{lost} {delivered}"
    # Two neighbouring sentences are a window already; a short text has no sentences.
    pairs = {pair: 0.0 for pair in windows(text)[1:] if pair not in scores}
    assert f"{lost} {story}" in pairs
    assert condensed(text, answered(scores | pairs | {story: 0.45, delivered: 0.0})) is None
    assert condensed(ask, answered({ask: 0.9})) is None


def test_a_long_paste_is_answered_from_the_sentence_that_asks(tiny_engine: Engine) -> None:
    paste = ("Hi, I hope you are having a good week and that the weather is nice where you are. "
             "I have been a loyal customer for many years and always recommend you to friends "
             "and family, and I rarely write in about anything at all to be honest with you. "
             "Anyway, cancel my order please.")
    assert tiny_engine.ask(paste).best is not None
    assert tiny_engine.ask(paste).best.entry.id == "cancel-order"  # type: ignore[union-attr]


def test_misspellings_are_corrected_towards_the_knowledge() -> None:
    speller = Speller(["customer wants to cancel the amazon order"], keep=["cx"])
    assert speller.correct("cx wnats to cancl the amzon ordr, Priya said") == (
        "cx wants to cancel the amazon order, Priya said")


def test_vendor_names_and_words_with_an_apostrophe_are_never_corrected() -> None:
    speller = Speller(["the order does not cancel"], keep=["Lowe's", "Best Buy"])
    # "lowes" is one edit from "does", "doesn" (of "doesn't") one from "does".
    assert speller.correct("lowes order, bestbuy order, it doesn't cancl") == (
        "lowes order, bestbuy order, it doesn't cancel")


def test_a_contraction_typed_without_its_apostrophe_is_not_a_misspelling() -> None:
    # "todays" is one edit from "days": "since the 1st (todays the 20th)" lost its today.
    speller = Speller(["it has been days", "theyre late"])
    assert speller.correct("since the 1st (todays the 20th), werent they told") == (
        "since the 1st (todays the 20th), werent they told")


def test_a_duration_unit_is_not_a_misspelling() -> None:
    from app.knowledge.conditions import Slot

    elapsed = Slot("elapsed", "duration", "time elapsed")
    speller = Speller(["it was processing"], keep=elapsed.terms())
    # "wks" is one edit from "was": it had been corrected, and "after 6 wks" was lost.
    assert speller.correct("processing after 6 wks, 4 mos, 3 hrs") == (
        "processing after 6 wks, 4 mos, 3 hrs")
    assert Speller(["it was processing"]).correct("after 6 wks") == "after 6 was"


def test_a_misspelt_question_finds_its_card(tiny_engine: Engine) -> None:
    answer = tiny_engine.ask("cancle my ordr plese")
    assert answer.best is not None and answer.best.entry.id == "cancel-order"


def test_knowledge_with_conditions_saves_and_reloads_unchanged(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    from app.knowledge.playbook import load_knowledge, save_playbook

    engine = conditional_engine(tiny_settings, fake_embedder)
    target = tiny_settings.knowledge_dir / "playbook.yaml"
    save_playbook(engine.knowledge, target)
    entry = load_knowledge(tiny_settings.knowledge_dir).entry("change-address")
    assert entry is not None
    assert [c.describe() for c in entry.conditions] == ["vendor is Best Buy"]


def test_slack_names_the_ruled_out_card_and_the_conditions(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    from app.web.slack.blocks import answer_message

    engine = conditional_engine(tiny_settings, fake_embedder)
    refused = answer_message(engine.ask("update address on order from home depot"))
    assert refused["blocks"][1] == {"type": "section", "text": {"type": "mrkdwn", "text": (
        "*Not this card*\n• “Customer wants to change the shipping address”: it applies to "
        "Best Buy orders; your question mentions Home Depot")}}
    answered = answer_message(engine.ask("update address on order"))
    context = answered["blocks"][2]["elements"][0]["text"]  # after the echo and the macro
    assert context.endswith(" · applies when vendor is Best Buy")


def test_a_one_liner_that_several_cards_contain_is_vague(tiny_engine: Engine) -> None:
    from app.ranking.specificity import Specificity

    specificity = Specificity(tiny_engine.entries())
    # "order" is in the address card's alternate, the cancel card and the SLA card's "orders".
    assert len(specificity.cards("order?")) == 3
    assert len(specificity.cards("address")) == 1
    assert len(specificity.cards("cancel my order please")) == 0  # a taught phrasing
    assert len(specificity.cards("cancel the order before the courier picks it up")) == 0
    # Filler words say nothing of the card.
    assert len(specificity.cards("address issue")) == 1
    answer = tiny_engine.ask("order?")
    assert (answer.matched, answer.ambiguous) == (False, True)
    assert answer.confidence <= 1 / 3


def test_a_word_inside_another_word_is_not_that_word() -> None:
    from app.ranking.specificity import Specificity

    cards = [Entry("report", "How to report a Postal problem", "File it."),
             Entry("po", "PO stuck", "Nudge the PO (purchase order)."),
             Entry("orders", "Orders late", "Wait."),
             Entry("strasse", "Straße address", "Spell it out.", alternates=("PO check",))]
    specificity = Specificity(cards, expand=["", "", "", "the PO's glossary text"])
    assert len(specificity.cards("po?")) == 2  # not "report" nor "Postal"
    assert len(specificity.cards("order")) == 2  # "orders", and "purchase order"
    assert len(specificity.cards("STRASSE")) == 1  # folded as the card's "Straße"
    assert len(specificity.cards("po check")) == 0  # a taught phrasing
    assert len(specificity.cards("glossary")) == 1  # the extra text counts
    assert len(specificity.cards("pizza")) == 0


def test_an_abbreviation_is_as_vague_as_what_it_stands_for() -> None:
    from app.ranking.specificity import Specificity

    cards = [Entry("lost", "Package lost in transit", "Wait."),
             Entry("stolen", "Pkg stolen or lost from the porch", "Claim."),
             Entry("oos", "Item out of stock", "Cancel."),
             Entry("sla", "Shipping SLA", "3-5 days.")]
    glossary = {"pkg": "package", "OOS": "out of stock"}
    plain = Specificity(cards)
    specificity = Specificity(cards, glossary=glossary)
    assert (len(plain.cards("lost pkg")), len(plain.cards("lost package"))) == (1, 1)
    assert (len(specificity.cards("lost pkg")), len(specificity.cards("lost package"))) == (2, 2)
    assert (len(plain.cards("oos")), len(specificity.cards("oos"))) == (0, 1)
    assert len(specificity.cards("out of stock")) == 1
    assert len(specificity.cards("sla")) == 1


def test_a_shipment_state_rules_out_a_card_for_another_state(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    folder = tiny_settings.knowledge_dir
    (folder / "slots.yaml").write_text(
        "shipment:\n  kind: choice\n  noun: orders\n  values:\n"
        "    not yet shipped: [not shipped, hasn't shipped]\n"
        "    already shipped: [has shipped, shipped out]\n", encoding="utf-8")
    playbook = folder / "playbook.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8").replace(
        "  tags: [cancellation]\n",
        "  tags: [cancellation]\n  conditions: {shipment: not yet shipped}\n"), encoding="utf-8")
    engine = Engine.open(tiny_settings, fake_embedder)
    shipped = engine.ask("cancel my order please, it has shipped")
    assert [(r.match.entry.id, r.reason) for r in shipped.ruled_out] == [
        ("cancel-order", "applies to not yet shipped orders; your question mentions already shipped")]
    not_shipped = engine.ask("cancel my order please, it hasn't shipped")
    assert not_shipped.best is not None and not_shipped.best.entry.id == "cancel-order"


def test_lint_suggests_a_condition_the_question_states_in_words(tiny_settings: Settings) -> None:
    from app.knowledge.lint import unstated_conditions
    from app.knowledge.playbook import load_knowledge

    folder = tiny_settings.knowledge_dir
    (folder / "slots.yaml").write_text(SLOTS, encoding="utf-8")
    playbook = folder / "playbook.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8").replace(
        "question: Customer wants to change the shipping address",
        "question: Customer wants to change the shipping address of a Best Buy order"),
        encoding="utf-8")
    findings = unstated_conditions(load_knowledge(folder))
    assert [str(f) for f in findings] == [
        f"{playbook}:2 [change-address] info: the question names vendor 'Best Buy' but the card "
        "has no vendor condition (fix: add `conditions: {vendor: ...}` if the card applies only "
        "then)"]




def test_lint_names_an_out_of_scope_line_that_is_or_is_close_to_a_cards_phrasing(
        tiny_settings: Settings) -> None:
    from app.knowledge.lint import lint
    from app.knowledge.playbook import load_knowledge

    out_of_scope = tiny_settings.knowledge_dir / "out_of_scope.txt"
    out_of_scope.write_text(out_of_scope.read_text(encoding="utf-8")
                            + "cancel my gift card order\nCancel my order, please!\n",
                            encoding="utf-8")
    findings = [str(f) for f in lint(load_knowledge(tiny_settings.knowledge_dir), FakeEmbedder())
                if f.message.startswith("out-of-scope line")]
    assert findings == [
        f"{out_of_scope}:6 [cancel-order] error: out-of-scope line 'Cancel my order, please!' is "
        "also a phrasing of entry 'cancel-order' (fix: delete the line if the card answers it, "
        "else the phrasing)",
        f"{out_of_scope}:5 [cancel-order] info: out-of-scope line 'cancel my gift card order' is "
        "close to entry 'cancel-order' (0.76): a question worded like it is refused, even one the "
        "card answers (fix: delete the line if the card answers it; if not, keep it or reword it "
        "with what sets it apart)"]

def test_the_entries_api_states_each_cards_conditions(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    from fastapi.testclient import TestClient

    from app.web.app import create_app

    client = TestClient(create_app(tiny_settings, conditional_engine(tiny_settings, fake_embedder)))
    assert [(e["id"], e["applies_when"]) for e in client.get("/api/entries").json()] == [
        ("change-address", ["vendor is Best Buy"]), ("cancel-order", []), ("shipping-sla", [])]


@pytest.mark.parametrize("question", ["cancel my order please", "update address on order",
                                      "update address on order from home depot", "order?",
                                      "what is the weather tomorrow"])
def test_how_many_alternatives_are_shown_never_changes_the_answer(
        tiny_settings: Settings, fake_embedder: FakeEmbedder, question: str) -> None:
    engine = conditional_engine(tiny_settings, fake_embedder)
    answers = [engine.ask(question, top_k=k) for k in (0, 1, 3)]
    decided = {(a.matched, a.best.entry.id if a.best else None, a.ambiguous,
                tuple(r.match.entry.id for r in a.ruled_out)) for a in answers}
    assert len(decided) == 1
    # Unmatched, the confidence shown is the best guess's: it needs one alternative shown.
    assert len({round(a.confidence, 6) for a in (answers if answers[0].matched
                                                  else answers[1:])}) == 1
    assert [len(a.alternatives) for a in answers] == [0, min(1, len(answers[2].alternatives)),
                                                      len(answers[2].alternatives)]
