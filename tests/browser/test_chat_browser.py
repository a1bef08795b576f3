"""The chat and review pages in Debian's Chromium, against the real app, model and seed playbook.

Run: .venv/bin/python -m pytest tests/browser -m browser -p no:cacheprovider
Screenshots go to artifacts/screenshots/. The fixtures are in conftest.py; the agent's day-long
flow (history, shortcut, picker search, playbook browser, dark mode, axe) in test_chat_flow.py.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, expect

from app.records import confidence_band
from app.store.feedback import Feedback
from tests.browser.live_app import (
    FIRST_LOAD_MS,
    TOKEN,
    XSS_ENTRY,
    XSS_IMG,
    XSS_SCRIPT,
    Live,
    ask,
    percent,
    policy_lines,
    screenshot,
    unlock_review,
)

pytestmark = [pytest.mark.browser, pytest.mark.model]

BEST_BUY_QUESTION = "cx wants to change the shipping addr on a best buy order"
BEST_BUY_MACRO = "#SD - Too Late - Can't Change Shipping Address (RP)"
BEST_BUY_SOURCE = "Customer is requesting change to shipping address and the vendor is best buy."
OUT_OF_SCOPE = "what's the best pizza place near the office"
REVIEW_QUESTION = "item arrived damaged what do i do"


# ------------------------------------------------------------------ the chat


def test_a_seed_paraphrase_shows_macro_source_confidence_and_copies(
        page: Page, live: Live) -> None:
    expected = live.engine.ask(BEST_BUY_QUESTION)
    assert expected.best is not None

    ask(page, BEST_BUY_QUESTION)

    card = page.locator("#conversation .card--answer").last
    expect(page.locator("#conversation .bubble").last).to_have_text(BEST_BUY_QUESTION)
    expect(card.locator(".policy")).to_have_count(0)  # the answer is the macro: shown once
    expect(card.locator(".macro-text")).to_have_text(BEST_BUY_MACRO)
    expect(card.locator(".matched")).to_have_text(f"Matched: {BEST_BUY_SOURCE}")
    expect(card.locator(".chip")).to_have_text(["address", "best-buy", "macro"])
    band = confidence_band(expected.confidence)
    expect(card.locator(".confidence-label")).to_have_text(
        f"{percent(expected.confidence)} · {band} confidence")
    assert card.locator(".confidence").get_attribute("class") == f"confidence confidence--{band}"
    expect(card.locator(".alt-question")).to_have_text(
        [m.entry.question for m in expected.alternatives])
    expect(page.locator("#question")).to_be_focused()
    expect(page.locator("#announcer")).to_have_text(
        f"Answer, {percent(expected.confidence)} {band} confidence: {BEST_BUY_MACRO}. "
        f"Macro: {BEST_BUY_MACRO}.")
    screenshot(page, "chat-matched.png")

    copy = card.locator("button.copy")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == BEST_BUY_MACRO


def test_clicking_an_alternative_shows_that_entry(page: Page, live: Live) -> None:
    expected = live.engine.ask(BEST_BUY_QUESTION)
    other = expected.alternatives[0].entry
    assert expected.alternatives[0].confidence < 0.10  # so it waits behind "Show 3"
    ask(page, BEST_BUY_QUESTION)

    page.locator("#conversation .card--answer .alt-more > summary").click()
    page.locator("#conversation .card--answer .alt").first.click()

    entry = page.locator("#conversation .card--entry").last
    expect(entry.locator(".matched")).to_have_text(f"Entry: {other.question}")
    expect(entry.locator(".policy")).to_have_text(policy_lines(other))
    expect(entry.locator(".macro-text")).to_have_count(1 if other.macro else 0)
    expect(entry.locator(".chip")).to_have_text(list(other.tags))
    expect(page.locator("#conversation > li").last).to_be_in_viewport()


def test_an_out_of_scope_question_shows_the_no_match_state(page: Page, live: Live) -> None:
    expected = live.engine.ask(OUT_OF_SCOPE)
    assert (expected.matched, expected.out_of_scope) == (False, None)  # no line near enough

    ask(page, OUT_OF_SCOPE)

    card = page.locator("#conversation .card--nomatch").last
    expect(card.locator(".nomatch-title")).to_have_text("No confident match")
    expect(card.locator(".policy")).to_have_count(0)
    expect(card.locator(".macro")).to_have_count(0)
    expect(card.locator(".alternatives .kicker")).to_have_text("Closest entries")
    expect(card.locator(".alt-question")).to_have_text(
        [m.entry.question for m in expected.alternatives])
    expect(card.locator(".nomatch-out-of-scope")).to_have_count(0)
    expect(page.locator("#announcer")).to_have_text(
        f"No confident match. {len(expected.alternatives)} closest entries suggested.")
    screenshot(page, "chat-no-match.png")


def test_a_question_several_cards_fit_asks_for_a_detail(page: Page, live: Live) -> None:
    expected = live.engine.ask("PO status")
    assert (expected.matched, expected.ambiguous, expected.out_of_scope) == (False, True, None)

    ask(page, "PO status")

    card = page.locator("#conversation .card--nomatch").last
    detail = ("Several entries could fit and the question does not say which: add a detail (the "
              "vendor, how long ago, the order's status) and ask again.")
    expect(card.locator(".nomatch-needs-detail")).to_have_text(detail)
    expect(page.locator("#announcer")).to_have_text(
        f"No confident match. {detail} {len(expected.alternatives)} closest entries suggested.")


def test_a_question_the_playbook_marks_out_of_scope_is_refused_naming_the_line(
        page: Page, live: Live) -> None:
    line = "does the customer pay for return shipping"  # knowledge/out_of_scope.txt
    assert line in live.engine.knowledge.out_of_scope

    ask(page, line)

    card = page.locator("#conversation .card--nomatch").last
    expect(card.locator(".nomatch-out-of-scope")).to_have_text(
        f"Not in the playbook: it is nearest to “{line}”, a question the playbook marks as one "
        "it does not answer.")
    expect(card.locator(".macro")).to_have_count(0)
    expect(page.locator("#announcer")).to_contain_text(
        "No confident match. The playbook marks this question as one it does not answer.")
    screenshot(page, "chat-out-of-scope.png")


def test_a_card_whose_condition_the_question_contradicts_is_shown_ruled_out(
        page: Page, live: Live) -> None:
    question = "customer wants a new shipping address on a Home Depot order"
    expected = live.engine.ask(question)
    assert [r.match.entry.id for r in expected.ruled_out] == ["best-buy-change-shipping-address"]
    assert expected.matched is False

    ask(page, question)

    card = page.locator("#conversation .card--nomatch").last
    expect(card.locator(".ruled-out .kicker")).to_have_text("Not this card")
    expect(card.locator(".ruled-out-question")).to_have_text(BEST_BUY_SOURCE)
    expect(card.locator(".ruled-out-reason")).to_have_text(
        "It applies to Best Buy orders; your question mentions Home Depot.")
    expect(card.locator(".macro")).to_have_count(0)
    expect(page.locator("#announcer")).to_have_text(
        "No confident match. The closest card does not apply: it applies to Best Buy orders; "
        f"your question mentions Home Depot. {len(expected.alternatives)} closest entries "
        "suggested.")
    screenshot(page, "chat-ruled-out.png")


def test_an_answer_shows_what_its_card_applies_to(page: Page, live: Live) -> None:
    ask(page, BEST_BUY_QUESTION)
    card = page.locator("#conversation .card--answer").last
    expect(card.locator(".applies-when")).to_have_text(
        "Applies when: vendor is Best Buy; address is the shipping address")


def test_an_ambiguous_answer_shows_both_candidates(page: Page, live: Live) -> None:
    # With the intent head, an answered question whose top two cards are within the ambiguity
    # margin is rare (none of the ~500 labelled and written questions is one), so the server's
    # real answer is marked ambiguous on its way to the page, as the engine would mark it.
    def marked_ambiguous(route: Route) -> None:
        body = route.fetch().json()
        route.fulfill(json={**body, "ambiguous": True, "confidence": 0.79, "band": "medium"})

    page.route("**/api/chat/ask", marked_ambiguous)
    expected = live.engine.ask(BEST_BUY_QUESTION)
    assert expected.best is not None

    ask(page, BEST_BUY_QUESTION)

    card = page.locator("#conversation .card--answer").last
    expect(card.locator(".matched")).to_have_text(f"Matched: {expected.best.entry.question}")
    expect(card.locator(".ambiguous-text")).to_have_text(
        "Ambiguous: two entries fit almost equally well. Check the other candidate before sending:")
    expect(card.locator(".ambiguous .alt-question")).to_have_text(
        expected.alternatives[0].entry.question)
    screenshot(page, "chat-ambiguous.png")


def test_errors_are_shown_in_the_conversation(page: Page, problems: list[str]) -> None:
    ask(page, "a" * 4001)
    expect(page.locator("#conversation .card--error .error-text").last).to_have_text(
        "the question is 4001 characters long; the limit is 4000")
    # Nothing is cut and nothing is lost: the refused text is back in the composer.
    expect(page.locator("#question")).to_have_value("a" * 4001)
    page.fill("#question", "")

    page.route("**/api/chat/ask", lambda route: route.abort())
    ask(page, "is anyone there")
    expect(page.locator("#conversation .card--error .error-text").last).to_have_text(
        "Can't reach the assistant. Check that the server is running, then try again.")
    expect(page.locator("#question")).to_be_focused()
    # Chromium logs both failed requests itself; nothing else may appear.
    assert problems == [
        "console error: Failed to load resource: the server responded with a status of 422 "
        "(Unprocessable Entity)",
        "console error: Failed to load resource: net::ERR_FAILED"]
    problems.clear()


def test_a_pasted_message_keeps_its_lines_and_shift_enter_adds_one(
        page: Page, live: Live) -> None:
    page.fill("#question", "Hi team,\nmy parcel never came.")
    page.press("#question", "Shift+Enter")
    page.keyboard.type("What do I do first?")
    expect(page.locator("#question")).to_have_value(
        "Hi team,\nmy parcel never came.\nWhat do I do first?")
    page.press("#question", "Enter")
    expect(page.locator("#conversation .bubble").last).to_have_text(
        "Hi team,\nmy parcel never came.\nWhat do I do first?")
    expect(page.locator("#question")).to_have_value("")


def test_the_page_fits_a_360_pixel_screen(page: Page) -> None:
    page.set_viewport_size({"width": 360, "height": 780})
    ask(page, BEST_BUY_QUESTION)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    expect(page.locator("#conversation .card--answer .copy")).to_be_in_viewport()
    screenshot(page, "chat-360px.png")


def test_markup_in_knowledge_and_queries_is_shown_literally(page: Page, live: Live) -> None:
    ask(page, XSS_ENTRY.question)
    card = page.locator("#conversation .card--answer").last
    expect(page.locator("#conversation .bubble").last).to_have_text(XSS_ENTRY.question)
    expect(card.locator(".policy")).to_have_text(XSS_ENTRY.answer)
    expect(card.locator(".macro-text")).to_have_text(XSS_ENTRY.macro or "")
    expect(card.locator(".matched")).to_have_text(f"Matched: {XSS_ENTRY.question}")
    expect(card.locator(".chip")).to_have_text(["<b>tag</b>"])

    ask(page, f"{XSS_IMG} {XSS_SCRIPT} cancel order")
    expect(page.locator("#conversation .bubble").last).to_have_text(
        f"{XSS_IMG} {XSS_SCRIPT} cancel order")
    assert page.locator("#conversation img, #conversation script, #conversation b").count() == 0
    assert page.evaluate("window.__xss === undefined") is True


# ------------------------------------------------------------------ feedback and review


def test_review_page_shows_queries_literally(page: Page, live: Live) -> None:
    ask(page, f"{XSS_IMG} {XSS_SCRIPT} pizza for lunch")
    # The markup itself makes this match the probe entry confidently; a 👎 queues it.
    card = page.locator("#conversation .card--answer").last
    card.locator(".thumb--down").click()
    card.locator(".choice--none").click()
    expect(card.locator(".feedback-status")).to_have_text("Noted: none of these fit.")
    unlock_review(page, live)
    item = page.locator(".group--thumbs_down .item", has_text="pizza for lunch")
    expect(item.locator(".item-question")).to_have_text(f"{XSS_IMG} {XSS_SCRIPT} pizza for lunch")
    expect(item.locator(".item-answered")).to_contain_text(f"Answered with: {XSS_ENTRY.question}")
    expect(item.locator(".item-picked")).to_have_text("Agent said: none of these")
    assert page.locator("#queue img, #queue script").count() == 0
    assert page.evaluate("window.__xss === undefined") is True


def test_wrong_token_is_refused_on_the_review_page(page: Page, live: Live,
                                                  problems: list[str]) -> None:
    page.goto(live.url + "/review")
    page.fill("#token", "not-the-token")
    page.press("#token", "Enter")
    expect(page.locator("#review-status")).to_have_text("That token was not accepted.")
    expect(page.locator("#token-form")).to_be_visible()
    assert problems == ["console error: Failed to load resource: the server responded with a "
                        "status of 401 (Unauthorized)"]
    problems.clear()


def test_a_token_typed_while_the_page_checks_its_session_is_kept(page: Page, live: Live) -> None:
    # On a slow machine the page's "is there a session already?" answer can arrive after the
    # token is typed: it used to empty the field, and Enter then did nothing.
    held: list[Route] = []

    def hold_first_check(route: Route) -> None:
        if route.request.method == "GET" and not held:
            held.append(route)
        else:
            route.continue_()

    page.route("**/api/admin/session", hold_first_check)
    page.goto(live.url + "/review")
    while not held:
        page.wait_for_timeout(20)
    page.fill("#token", TOKEN)
    with page.expect_response(lambda response: response.url.endswith("/api/admin/session")):
        held[0].continue_()
    page.evaluate("fetch('/healthz').then(r => r.text())")  # lets the page handle the answer
    expect(page.locator("#token")).to_have_value(TOKEN)
    page.press("#token", "Enter")
    expect(page.locator("#queue .group")).to_have_count(3, timeout=FIRST_LOAD_MS)


def test_the_review_session_survives_a_reload_and_no_script_can_read_it(
        page: Page, live: Live) -> None:
    unlock_review(page, live)
    storage = page.evaluate("[document.cookie, JSON.stringify(sessionStorage), "
                            "JSON.stringify(localStorage)]")
    assert storage == ["", "{}", "{}"]
    page.reload()
    expect(page.locator("#queue .group")).to_have_count(3)
    page.click("#lock")
    expect(page.locator("#token-form")).to_be_visible()
    page.reload()
    expect(page.locator("#token-form")).to_be_visible()
    expect(page.locator("#queue .group")).to_have_count(0)


def test_the_api_docs_render_from_the_apps_own_files(page: Page, live: Live) -> None:
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith((live.url, "data:")) else None)
    page.goto(live.url + "/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/ask")).to_have_count(1)
    expect(page.locator(".opblock").first).to_be_visible()
    assert outside == []
    screenshot(page, "api-docs.png")


def test_thumbs_down_pick_then_add_alternate_teaches_the_entry(page: Page, live: Live) -> None:
    before = live.engine.ask(REVIEW_QUESTION)
    right = before.alternatives[0].entry
    assert (before.matched, before.best) == (False, None)

    ask(page, REVIEW_QUESTION)
    card = page.locator("#conversation .card--nomatch").last
    card.locator(".thumb--down").click()
    card.locator(".choice", has_text=right.question).click()
    expect(card.locator(".feedback-status")).to_have_text(
        f"Noted: the right entry is “{right.question}”.")
    logged = [q for q in live.store.queries() if q.question == REVIEW_QUESTION]
    assert [(q.matched, q.feedback) for q in logged] == [(False, Feedback("down", right.id))]

    unlock_review(page, live)
    item = page.locator("#queue .group--thumbs_down .item", has_text=REVIEW_QUESTION)
    expect(item.locator(".item-picked")).to_have_text(f"Agent picked: {right.question}")
    expect(item.locator("select")).to_have_value(right.id)
    screenshot(page, "review.png", full_page=True)
    item.locator("button.add").click()
    expect(page.locator("#review-status")).to_contain_text(
        f"Added “{REVIEW_QUESTION}” to “{right.question}”. Index built:")
    expect(page.locator("#queue .item", has_text=REVIEW_QUESTION)).to_have_count(0)
    assert REVIEW_QUESTION in live.engine.entry(right.id).alternates

    page.goto(live.url + "/")
    ask(page, REVIEW_QUESTION)
    card = page.locator("#conversation .card--answer").last
    expect(card.locator(".matched")).to_have_text(f"Matched: {right.question}")
    expect(card.locator(".policy")).to_have_text(policy_lines(right))
    screenshot(page, "chat-after-review.png")
    assert [q.review_status for q in live.store.queries() if q.question == REVIEW_QUESTION] == [
        "added", "open"]
