"""The agent's day-long flow in Debian's Chromium (issue 15): history across reloads, Alt+C and a
Copy button on every answer, the 👎 picker's search over every entry, the playbook browser, dark
mode, and axe-core's accessibility scan, against the real app, model and seed playbook.

Screenshots go to artifacts/screenshots/ (flow-*.png).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence

import pytest
from playwright.sync_api import Page, Route, expect

from app.records import Entry, confidence_band
from app.store.feedback import Feedback
from tests.browser.live_app import (
    TOKEN,
    Live,
    ask,
    axe_violations,
    percent,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.model]

HISTORY_KEY = "playbook-assistant.chat-history.v1"
MACRO_QUESTION = "cx wants to change the shipping addr on a best buy order"
MACRO = "#SD - Too Late - Can't Change Shipping Address (RP)"
MACRO_ENTRY = "best-buy-change-shipping-address"
PLAIN_QUESTION = "how long does shipping take"
PLAIN_ANSWER = "3-5 business days"  # the shipping-sla card: no macro
NO_MATCH_QUESTION = "what's the best pizza place near the office"
PICKER_QUESTION = "the parcel came smashed up, what now"
PICKED_ENTRY = "freight-processing-time"  # not among PICKER_QUESTION's alternatives
PICKER_SEARCH = "furniture"


def fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c)).lower()


def matching(entries: Sequence[Entry], query: str) -> list[str]:
    """The questions common.js's searchEntries lists for `query`, in its order: entries holding
    every word, those with every word in the question first, then in playbook order."""
    words = fold(query).split()
    ranked = []
    for order, entry in enumerate(entries):
        question = fold(entry.question)
        text = "\n".join([question, fold("\n".join(entry.alternates)), fold(entry.answer),
                          fold(entry.macro or ""), fold(" ".join(entry.tags)), fold(entry.id)])
        if all(w in text for w in words):
            ranked.append((0 if all(w in question for w in words) else 1, order, entry.question))
    return [question for _, _, question in sorted(ranked)]


def bottom_of(page: Page, selector: str) -> float:
    box = page.locator(selector).last.bounding_box()
    assert box is not None
    return float(box["y"] + box["height"])


def composer_top(page: Page) -> float:
    box = page.locator("#composer").bounding_box()
    assert box is not None
    return float(box["y"])


def clipboard(page: Page) -> str:
    return str(page.evaluate("navigator.clipboard.readText()"))


# ------------------------------------------------------------------ history


def test_kept_history_expires_with_the_servers_retention(page: Page, live: Live) -> None:
    assert live.engine.settings.retention_days == 30
    ask(page, PLAIN_QUESTION)
    stored = json.loads(page.evaluate(f"localStorage.getItem('{HISTORY_KEY}')"))
    old = [{**record, "at": record["at"] - 31 * 86_400_000} for record in stored]
    page.evaluate("([key, value]) => localStorage.setItem(key, value)",
                  [HISTORY_KEY, json.dumps(old + stored)])
    page.reload()
    expect(page.locator("#conversation .bubble")).to_have_text([PLAIN_QUESTION])


def test_history_survives_a_reload_and_clear_empties_it(page: Page, live: Live) -> None:
    macro = live.engine.ask(MACRO_QUESTION)
    plain = live.engine.ask(PLAIN_QUESTION)
    ask(page, MACRO_QUESTION)
    ask(page, PLAIN_QUESTION)
    first = page.locator("#conversation .card--answer").first
    first.locator(".thumb--up").click()
    expect(first.locator(".feedback-status")).to_have_text("Thanks, noted.")
    logged = len(live.store.queries())

    requested: list[str] = []
    page.on("request", lambda r: requested.append(f"{r.method} {r.url.removeprefix(live.url)}"))
    page.reload()

    # Drawn again from the stored answers: nothing was asked again, nothing was sent.
    expect(page.locator("#conversation .bubble")).to_have_text([MACRO_QUESTION, PLAIN_QUESTION])
    cards = page.locator("#conversation .card--answer")
    expect(cards.locator(".macro-text")).to_have_text([MACRO])
    expect(cards.nth(1).locator(".policy")).to_have_text(PLAIN_ANSWER)
    expect(cards.locator(".confidence-label")).to_have_text([
        f"{percent(a.confidence)} · {confidence_band(a.confidence)} confidence"
        for a in (macro, plain)])
    expect(cards.first.locator(".thumb--up")).to_have_attribute("aria-pressed", "true")
    expect(cards.first.locator(".feedback-status")).to_have_text("Thanks, noted.")
    expect(page.locator("#welcome")).to_be_hidden()
    expect(page.locator("h1")).to_have_text("Ask the playbook")
    assert sorted(requested) == ["GET /", "GET /static/chat.js", "GET /static/common.js",
                                 "GET /static/playbook.js", "GET /static/style.css"]
    assert len(live.store.queries()) == logged
    assert page.evaluate("Object.keys(localStorage)") == [HISTORY_KEY]
    stored = json.loads(page.evaluate(f"localStorage.getItem('{HISTORY_KEY}')"))
    assert [r["type"] for r in stored] == ["question", "answer", "question", "answer"]
    assert all(isinstance(r["at"], (int, float)) for r in stored)
    assert stored[1]["feedback"] == {"body": {"rating": "up"}, "thanks": "Thanks, noted."}
    screenshot(page, "flow-history-restored.png")

    # The kept 👍 can still be changed: the answer's feedback token came back with it.
    cards.first.locator(".thumb--down").click()
    expect(cards.first.locator(".feedback-status")).to_have_text(
        "Thanks. Pick the right entry below if you know it.")
    assert [q.feedback for q in live.store.queries() if q.question == MACRO_QUESTION][-1] == \
        Feedback("down")

    page.click("#clear-history")
    expect(page.locator("#conversation > li")).to_have_count(0)
    expect(page.locator("#welcome")).to_be_visible()
    expect(page.locator("#clear-history")).to_be_hidden()
    expect(page.locator("#question")).to_be_focused()
    assert page.evaluate("JSON.stringify(localStorage)") == "{}"
    page.reload()
    expect(page.locator("#welcome")).to_be_visible()
    expect(page.locator("#conversation > li")).to_have_count(0)


# ------------------------------------------------------------------ copying


def test_alt_c_copies_the_latest_macro_or_answer_and_every_answer_has_copy(
        page: Page, live: Live) -> None:
    expect(page.locator(".shortcut-hint")).to_have_text("Alt+C copies the latest macro or answer.")
    ask(page, MACRO_QUESTION)
    expect(page.locator("#question")).to_be_focused()
    page.keyboard.press("Alt+C")
    assert clipboard(page) == MACRO
    expect(page.locator("#conversation .card--answer .copy")).to_have_text("Copied")
    expect(page.locator("#question")).to_have_value("")  # nothing typed into the composer

    # A card without a macro copies its answer, by button and by Alt+C.
    ask(page, PLAIN_QUESTION)
    plain = page.locator("#conversation .card--answer").last
    expect(plain.locator(".macro")).to_have_count(0)
    copy = plain.locator(".copy")
    expect(copy).to_have_attribute("aria-label", "Copy answer")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert clipboard(page) == PLAIN_ANSWER
    page.evaluate("navigator.clipboard.writeText('something else')")
    page.keyboard.press("Alt+C")
    assert clipboard(page) == PLAIN_ANSWER

    # Every answer card has exactly one Copy; only the newest answers to Alt+C.
    expect(page.locator("#conversation .card--answer")).to_have_count(2)
    for card in page.locator("#conversation .card--answer").all():
        expect(card.locator(".copy")).to_have_count(1)
    expect(page.locator("#conversation .copy[aria-keyshortcuts='Alt+C']")).to_have_count(1)
    expect(copy).to_have_attribute("aria-keyshortcuts", "Alt+C")
    screenshot(page, "flow-copy-answer.png")

    # After "no confident match" there is nothing to send, so nothing older is copied.
    ask(page, NO_MATCH_QUESTION)
    page.evaluate("navigator.clipboard.writeText('unchanged')")
    page.keyboard.press("Alt+C")
    expect(page.locator("#announcer")).to_have_text(
        "Nothing to copy: the latest answer has no macro or answer.")
    assert clipboard(page) == "unchanged"


# ------------------------------------------------------------------ alternatives


def test_alternatives_under_ten_percent_wait_behind_show_more(page: Page, live: Live) -> None:
    expected = live.engine.ask(MACRO_QUESTION)
    assert [round(m.confidence, 2) for m in expected.alternatives] == [0.0, 0.0, 0.0]
    ask(page, MACRO_QUESTION)
    card = page.locator("#conversation .card--answer").last
    expect(card.locator(".alt-list").first).to_be_hidden()
    summary = card.locator(".alt-more > summary")
    expect(summary).to_have_text("Show 3 (each under 10%)")
    summary.click()
    expect(card.locator(".alt-question")).to_have_text(
        [m.entry.question for m in expected.alternatives])
    expect(card.locator(".alt").first).to_be_visible()

    # "Item arrived damaged": one close card at about 32 % shown, two under 10 % behind "more".
    question = "item arrived damaged what do i do"
    closest = live.engine.ask(question)
    likely = [m for m in closest.alternatives if m.confidence >= 0.10]
    assert (closest.matched, len(likely), len(closest.alternatives)) == (False, 1, 3)
    ask(page, question)
    card = page.locator("#conversation .card--nomatch").last
    expect(card.locator(".alternatives > .alt-list .alt-question")).to_have_text(
        [likely[0].entry.question])
    expect(card.locator(".alt-more > summary")).to_have_text("Show 2 more (each under 10%)")


# ------------------------------------------------------------------ the 👎 picker


def test_the_picker_finds_an_entry_that_was_not_among_the_alternatives(
        page: Page, live: Live) -> None:
    expected = live.engine.ask(PICKER_QUESTION)
    assert PICKED_ENTRY not in [m.entry.id for m in expected.alternatives]
    assert expected.best is None or expected.best.entry.id != PICKED_ENTRY
    picked = live.engine.entry(PICKED_ENTRY)
    found = matching(live.engine.entries(), PICKER_SEARCH)
    assert found == [picked.question]

    ask(page, PICKER_QUESTION)
    card = page.locator("#conversation > li").last
    card.locator(".thumb--down").click()
    expect(card.locator(".feedback-status")).to_have_text(
        "Thanks. Pick the right entry below if you know it.")
    assert bottom_of(page, "#conversation .picker") <= composer_top(page)  # not under the composer

    card.get_by_label("Or search every entry").fill(PICKER_SEARCH)
    expect(card.locator(".picker-results .choice")).to_have_text(found)
    expect(card.locator(".picker-count")).to_have_text("1 entry matches.")
    assert bottom_of(page, "#conversation .picker-results") <= composer_top(page)
    screenshot(page, "flow-picker-search.png")
    card.locator(".picker-results .choice").click()
    expect(card.locator(".feedback-status")).to_have_text(
        f"Noted: the right entry is “{picked.question}”.")
    logged = [q for q in live.store.queries() if q.question == PICKER_QUESTION]
    assert [q.feedback for q in logged] == [Feedback("down", PICKED_ENTRY)]

    # Words that no entry has all of say so.
    card.get_by_label("Or search every entry").fill("furniture pizza")
    expect(card.locator(".picker-count")).to_have_text("No entry has all these words.")
    expect(card.locator(".picker-results .choice")).to_have_count(0)


def test_the_picker_stays_clear_of_the_composer_on_a_small_screen(page: Page) -> None:
    page.set_viewport_size({"width": 360, "height": 780})
    ask(page, PICKER_QUESTION)
    page.locator("#conversation .thumb--down").last.click()
    expect(page.locator("#conversation .feedback-status").last).to_have_text(
        "Thanks. Pick the right entry below if you know it.")
    assert bottom_of(page, "#conversation .picker") <= composer_top(page)
    page.locator("#conversation .picker-search").last.fill("cancel")
    # The entries load on the first keystroke: arrow down once the results are there.
    expect(page.locator("#conversation .picker-results .choice").first).to_be_visible()
    page.locator("#conversation .picker-search").last.press("ArrowDown")
    expect(page.locator("#conversation .picker-results .choice").first).to_be_focused()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(page, "flow-picker-360px.png")


# ------------------------------------------------------------------ the playbook browser


def test_the_playbook_browser_searches_and_opens_any_card(page: Page, live: Live) -> None:
    entries = live.engine.entries()
    page.click("#open-browser")
    dialog = page.locator("#playbook-browser")
    expect(dialog).to_be_visible()
    expect(page.locator("#browser-search")).to_be_focused()
    expect(page.locator("#browser-count")).to_have_text(f"{len(entries)} cards.")
    expect(dialog.locator(".browser-question")).to_have_text([e.question for e in entries])

    page.fill("#browser-search", "best buy")
    best_buy = matching(entries, "best buy")
    expect(dialog.locator(".browser-question")).to_have_text(best_buy)
    expect(page.locator("#browser-count")).to_have_text(f"{len(best_buy)} cards match.")
    entry = live.engine.entry(MACRO_ENTRY)
    card = dialog.locator(f".browser-entry[data-entry-id='{MACRO_ENTRY}']")
    card.locator("summary").click()
    expect(card.locator(".macro-text")).to_have_text(MACRO)
    expect(card.locator(".policy")).to_have_count(0)  # the answer is the macro: shown once
    expect(card.locator(".chip")).to_have_text(list(entry.tags))
    expect(card.locator(".phrasings-list li")).to_have_text(list(entry.alternates))
    card.locator(".copy").click()
    assert clipboard(page) == MACRO
    screenshot(page, "flow-playbook-browser.png")

    # A plain card copies its answer; Alt+C in the browser copies the card opened last.
    page.fill("#browser-search", "sla")
    sla = dialog.locator(".browser-entry[data-entry-id='shipping-sla']")
    sla.locator("summary").click()
    expect(sla.locator(".policy")).to_have_text(PLAIN_ANSWER)
    page.keyboard.press("Alt+C")
    assert clipboard(page) == PLAIN_ANSWER

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator("#open-browser")).to_be_focused()

    # The browser has an address of its own.
    page.goto(live.url + "/#playbook")
    expect(dialog).to_be_visible()
    page.click("#browser-close")
    expect(dialog).to_be_hidden()
    assert page.evaluate("location.hash") == ""


def test_the_playbook_browser_shows_a_cards_conditions_when_the_entry_has_them(
        page: Page, live: Live) -> None:
    # GET /api/entries does not carry conditions yet; the answer JSON does ("applies_when").
    # The entries are given them here as the API would, to show the browser draws them.
    def with_conditions(route: Route) -> None:
        body = route.fetch().json()
        route.fulfill(json=[{**e, "applies_when": ["vendor is Best Buy"]
                             if e["id"] == MACRO_ENTRY else []} for e in body])

    page.route("**/api/entries", with_conditions)
    page.click("#open-browser")
    card = page.locator(f".browser-entry[data-entry-id='{MACRO_ENTRY}']")
    card.locator("summary").click()
    expect(card.locator(".applies-when")).to_have_text("Applies when: vendor is Best Buy")
    expect(page.locator(".browser-entry[data-entry-id='shipping-sla'] .applies-when")).to_have_count(0)


# ------------------------------------------------------------------ dark mode


@pytest.mark.parametrize(("scheme", "background", "surface", "ink"), [
    ("light", "rgb(244, 245, 248)", "rgb(255, 255, 255)", "rgb(27, 31, 42)"),
    ("dark", "rgb(18, 21, 28)", "rgb(27, 31, 42)", "rgb(230, 233, 240)"),
])
def test_the_page_follows_the_systems_colour_scheme(
        page: Page, scheme: str, background: str, surface: str, ink: str) -> None:
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.set_viewport_size({"width": 360, "height": 780})
    ask(page, MACRO_QUESTION)
    ask(page, "item arrived damaged what do i do")
    page.locator("#conversation .thumb--down").last.click()
    expect(page.locator("#conversation .feedback-status").last).to_have_text(
        "Thanks. Pick the right entry below if you know it.")

    colours = page.evaluate("""() => {
        const style = (selector) => getComputedStyle(document.querySelector(selector));
        return [style('html').backgroundColor, style('.card').backgroundColor,
                style('body').color, style('html').colorScheme];
    }""")
    assert colours == [background, surface, ink, scheme]
    screenshot(page, f"flow-chat-{scheme}-360px.png")
    page.click("#open-browser")
    page.locator(".browser-entry summary").first.click()
    screenshot(page, f"flow-playbook-browser-{scheme}-360px.png")


# ------------------------------------------------------------------ accessibility


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 360])
def test_axe_finds_no_violations_on_the_chat_browser_and_review(
        page: Page, live: Live, width: int, scheme: str) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    scans = {"chat, empty": axe_violations(page)}

    ask(page, MACRO_QUESTION)
    ask(page, PLAIN_QUESTION)
    ask(page, "item arrived damaged what do i do")
    page.locator("#conversation .alt-more > summary").first.click()
    page.locator("#conversation .thumb--down").last.click()
    page.locator("#conversation .picker-search").last.fill("cancel")
    expect(page.locator("#conversation .picker-results .choice").first).to_be_visible()
    page.keyboard.press("Alt+C")  # the live region, the copied state
    scans["chat, answered, picker open"] = axe_violations(page)

    page.click("#open-browser")
    page.locator(f".browser-entry[data-entry-id='{MACRO_ENTRY}'] summary").click()
    expect(page.locator("#playbook-browser .macro-text")).to_have_text(MACRO)
    scans["playbook browser"] = axe_violations(page)
    page.keyboard.press("Escape")

    page.goto(live.url + "/review")
    scans["review, locked"] = axe_violations(page)
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    expect(page.locator("#queue .group--thumbs_down .item").first).to_be_visible()
    scans["review, unlocked"] = axe_violations(page)

    assert scans == {name: [] for name in scans}
    screenshot(page, f"flow-review-{scheme}-{width}px.png", full_page=True)
