"""The knowledge workbench in Debian's Chromium: unlock, find an entry, teach it a phrasing (checked
as it is typed), draft it, preview its impact on a question an agent labelled, publish, and restore
the version before; every figure on the page is the API's. axe finds nothing, light and dark.

Screenshots: artifacts/screenshots/workbench-*.png.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import BrowserContext, ConsoleMessage, Dialog, Page, expect

from app.config import Settings
from app.engine.engine import Engine
from app.store.feedback import Feedback
from app.web.app import create_app
from tests.browser.live_app import TOKEN, XSS_IMG, Live, axe_violations, percent, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.model]

ENTRY = "shipment-updated-within-5-days"
# A question an agent asked and labelled (thumbs-down, "it was ENTRY"); the edit teaches it.
PHRASING = "the courier site shows my parcel touring depots all over the country"
ADMIN = {"X-Playbook-Admin": "1"}
DRAFT_KEY = "playbook.workbench.draft"
GIFT_CARD = "can-the-customer-pay-with-a-gift-card"


CONFLICT = "Failed to load resource: the server responded with a status of 409 (Conflict)"


@pytest.fixture
def confirmed() -> list[str]:
    return []


@pytest.fixture
def conflicts() -> list[str]:
    return []


@pytest.fixture
def page(context: BrowserContext, live: Live, problems: list[str], confirmed: list[str],
         conflicts: list[str]) -> Iterator[Page]:
    """conftest's page, except that the restore's confirm() is accepted and a refused publish's
    409 (which Chromium logs as an error) is kept apart; the tests check both."""
    opened = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            (conflicts if message.text == CONFLICT else problems).append(message.text)

    def on_dialog(dialog: Dialog) -> None:
        if dialog.type == "confirm" and dialog.message.startswith("Restore version "):
            confirmed.append(dialog.message)
            dialog.accept()
        else:
            problems.append(f"dialog: {dialog.message}")
            dialog.dismiss()

    opened.on("console", on_console)
    opened.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    opened.on("dialog", on_dialog)
    yield opened
    assert problems == []


def api(page: Page, live: Live, method: str, path: str, body: Any = None) -> Any:
    """The workbench API with the page's own session cookie."""
    headers = ADMIN if body is None else {**ADMIN, "Content-Type": "application/json"}
    response = page.request.fetch(live.url + path, method=method, headers=headers,
                                  data=None if body is None else json.dumps(body))
    assert response.ok, (path, response.status, response.text())
    return response.json()


def side(answer: dict[str, Any]) -> str:
    if answer["returned"] is None:
        return "no confident match"
    return f"{answer['returned']} ({percent(answer['confidence'])})"


def figure(value: float | None) -> str:
    return "–" if value is None else "%g%%" % (int(value * 1000 + 0.5) / 10)


def rows(page: Page, table: str) -> list[list[str]]:
    """The cells' text, row by row."""
    found: list[list[str]] = page.eval_on_selector_all(
        f"#{table} tbody tr",
        "trs => trs.map(tr => [...tr.children].map(td => td.textContent))")
    return found


def test_edit_preview_publish_and_restore(page: Page, live: Live, confirmed: list[str],
                                          conflicts: list[str]) -> None:
    asked = live.engine.ask(PHRASING)
    assert asked.best is None or asked.best.entry.id != ENTRY  # the edit is what fixes it
    query_id = live.store.log_query(asked, "web")
    assert query_id is not None
    live.store.record_feedback(query_id, Feedback("down", picked_entry_id=ENTRY))

    # Unlock: the token becomes the HttpOnly session cookie.
    page.goto(live.url + "/workbench")
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Workbench")
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    expect(page.locator("#workbench")).to_be_visible()
    assert page.evaluate("() => JSON.stringify(sessionStorage) + document.cookie") == "{}"
    expect(page.locator("#history > li")).to_have_count(1)

    # Search: results as the API ranks them; markup in an entry stays text.
    page.fill("#search", "markup probe")
    expect(page.locator("#results .wb-result")).to_have_count(1)
    expect(page.locator("#results .wb-result-question")).to_contain_text(XSS_IMG)
    assert page.evaluate("() => window.__xss") is None
    page.fill("#search", "lost in transit")
    found = api(page, live, "GET", "/api/workbench/entries?limit=100&q=lost%20in%20transit")
    ids = [e["id"] for e in found["entries"]]
    assert ids == [ENTRY]
    expect(page.locator("#results .wb-result")).to_have_count(1)
    expect(page.locator("#results .wb-result")).to_have_attribute("data-entry-id", ENTRY)
    expect(page.locator("#results .wb-result .mono")).to_have_text(ENTRY)
    expect(page.locator("#search-count")).to_have_text("1 entry.")

    # Open it: every field, the id read-only.
    page.locator(f"#results .wb-result[data-entry-id='{ENTRY}']").click()
    before = api(page, live, "GET", f"/api/workbench/entries/{ENTRY}")
    expect(page.locator("#f-id")).to_have_value(ENTRY)
    expect(page.locator("#f-id")).to_have_attribute("readonly", "")
    expect(page.locator("#f-question")).to_have_value(before["question"])
    expect(page.locator("#f-macro")).to_have_value(before["macro"])
    expect(page.locator("#f-alternates")).to_have_value("\n".join(before["alternates"]))
    expect(page.locator("#f-tags")).to_have_value(", ".join(before["tags"]))
    expect(page.locator("#f-conditions")).to_have_value("elapsed: at most 5 days")
    assert PHRASING not in before["alternates"]

    # Teach it the phrasing: the checks are the API's for exactly this entry.
    page.locator("#f-alternates").fill("\n".join([*before["alternates"], PHRASING]))
    edited = {k: v for k, v in before.items() if k != "source"}
    edited["alternates"] = [*before["alternates"], PHRASING]
    checked = api(page, live, "POST", "/api/workbench/check",
                  {"entries": [edited], "base_hash": found["knowledge_hash"]})
    assert checked["ok"] is True
    assert any("en/em dash" in p["message"] for p in checked["problems"])
    expect(page.locator("#check-problems .wb-problem-text")).to_have_text(
        [p["message"] for p in checked["problems"]])
    expect(page.locator("#check-problems .wb-problem--error")).to_have_count(0)

    # Into the draft, which a reload keeps.
    page.click("#add-to-draft")
    expect(page.locator("#draft-status")).to_have_text(f"Added {ENTRY} in the draft (1 entry).")
    expect(page.locator("#draft-list > li")).to_have_count(1)
    saved = json.loads(page.evaluate(f"() => sessionStorage.getItem('{DRAFT_KEY}')"))
    assert saved == {"base_hash": found["knowledge_hash"],
                     "items": [{"entry": edited, "isNew": False}]}
    page.reload()
    expect(page.locator("#draft-list > li")).to_have_count(1)
    expect(page.locator("#draft-list > li")).to_contain_text(before["question"])
    page.get_by_role("button", name=f"Edit {ENTRY}").click()
    expect(page.locator("#editor-mode")).to_have_text(f"Editing {ENTRY} (from the draft)")
    expect(page.locator("#f-alternates")).to_have_value("\n".join(edited["alternates"]))

    # Preview: the labelled question is fixed; every row and figure is the API's.
    # Every labelled question is answered twice with the real model: allow it two minutes. The
    # page's own response is the expectation (a second preview would double the wait).
    with page.expect_response(lambda r: r.url == live.url + "/api/workbench/preview",
                              timeout=120_000) as previewed:
        page.click("#preview")
        expect(page.locator("#impact")).to_be_visible()
        expect(page.locator("#impact")).to_have_attribute("aria-busy", "true")
        expect(page.locator("#impact-busy")).to_be_visible()
        expect(page.locator("#preview")).to_be_disabled()
    assert previewed.value.request.post_data_json == {"entries": [edited],
                                                      "base_hash": found["knowledge_hash"]}
    preview = previewed.value.json()
    expect(page.locator("#impact-agents")).to_be_visible()
    expect(page.locator("#impact")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#impact-busy")).to_be_hidden()
    expect(page.locator("#draft-status")).to_have_text("Impact ready.")
    impact = preview["impact"]
    agents = impact["agents"]["queries"]
    taught = [q for q in agents if q["query"] == PHRASING]
    assert len(taught) == 1
    assert taught[0]["change"] == "fixed" and taught[0]["after"]["returned"] == ENTRY
    assert rows(page, "impact-agents") == [[q["query"], q["change"], side(q["before"]), side(q["after"])]
                                           for q in agents]
    if impact["eval"]["queries"]:
        assert rows(page, "impact-eval") == [
            [q["query"], q["change"], side(q["before"]), side(q["after"])]
            for q in impact["eval"]["queries"]]
    else:
        expect(page.locator("#impact-eval")).to_have_count(0)
    expect(page.locator("#newly-refused strong")).to_have_text(str(impact["newly_refused"]))
    gate = rows(page, "gate")
    assert [row[1:3] for row in gate] == [
        [figure(impact["gate"][name]["before"]), figure(impact["gate"][name]["after"])]
        for name in ("top1", "recall_at_3", "abstention", "wrong_refusal", "confident_wrong")]
    assert axe_violations(page) == []
    screenshot(page, "workbench-impact.png", full_page=True)

    # Publish: a new version, the phrasing served, the draft gone.
    page.click("#publish")
    expect(page.locator("#draft-status")).to_contain_text("Published as version 2: ",
                                                          timeout=60_000)
    health = live.engine.health()
    expect(page.locator("#draft-status")).to_have_text(
        f"Published as version 2: {health['entries']} entries, {health['vectors']} vectors.")
    assert PHRASING in api(page, live, "GET", f"/api/workbench/entries/{ENTRY}")["alternates"]
    expect(page.locator("#editor-mode")).to_have_text(f"Editing {ENTRY}")  # now the served text
    expect(page.locator("#draft-list > li")).to_have_count(0)
    assert page.evaluate(f"() => sessionStorage.getItem('{DRAFT_KEY}')") is None

    # History: the publish on top, with what it changed.
    expect(page.locator("#history > li")).to_have_count(2)
    versions = api(page, live, "GET", "/api/workbench/history")
    assert [(v["version"], v["action"]) for v in versions] == [(2, "publish"), (1, "file-edit")]
    newest = page.locator("#history > li").first
    expect(newest.locator(".wb-version-title")).to_have_text("Version 2current")
    expect(newest.locator(".wb-version-meta")).to_have_text(
        f"{versions[0]['recorded_at'].replace('T', ' ')[:16]} UTC · {versions[0]['who']} · publish")
    expect(newest.locator(".wb-version-changes > li")).to_have_text([f"edited {ENTRY}: alternates"])
    expect(newest.get_by_role("button", name="Restore version 2")).to_have_count(0)

    # Restore version 1: recorded as version 3; the phrasing is gone again.
    page.get_by_role("button", name="Restore version 1").click()
    expect(page.locator("#wb-status")).to_have_text("Restored version 1 as version 3.",
                                                    timeout=60_000)
    assert confirmed == ["Restore version 1? The playbook becomes what it was then; this is "
                         "recorded as a new version."]
    assert PHRASING not in api(page, live, "GET", f"/api/workbench/entries/{ENTRY}")["alternates"]
    expect(page.locator("#history > li")).to_have_count(3)
    expect(page.locator("#history > li").first.locator(".wb-version-meta")).to_contain_text(
        " · restore of version 1")
    expect(page.locator("#history > li").first.locator(".wb-version-changes > li")).to_have_text(
        [f"edited {ENTRY}: alternates"])
    expect(page.locator("#f-alternates")).to_have_value("\n".join(before["alternates"]))

    page.set_viewport_size({"width": 360, "height": 800})
    page.emulate_media(color_scheme="dark")
    assert axe_violations(page) == []
    screenshot(page, "workbench-360-dark.png", full_page=True)
    assert conflicts == []


def test_a_new_entry_from_the_review_page(page: Page, live: Live, conflicts: list[str]) -> None:
    page.goto(live.url + "/workbench")
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    expect(page.locator("#workbench")).to_be_visible()
    page.goto(live.url + "/workbench?from=" + "Can the customer pay with a gift card%3F")
    expect(page.locator("#f-question")).to_have_value("Can the customer pay with a gift card?")
    expect(page.locator("#f-id")).to_have_value(GIFT_CARD)
    expect(page.locator("#f-id")).not_to_have_attribute("readonly", "")
    expect(page.locator("#f-answer")).to_be_focused()
    expect(page.locator("#check-problems .wb-problem--error .wb-problem-text")).to_have_text(
        ["Answer: required"])
    page.fill("#f-answer", "Yes, gift cards are accepted.")
    expect(page.locator("#check-problems .wb-problem--error")).to_have_count(0)
    expect(page.locator("#check-status")).not_to_have_text("Checking…")
    page.click("#add-to-draft")
    expect(page.locator("#draft-list > li")).to_have_text(
        [f"new{GIFT_CARD}Can the customer pay with a gift card?EditRemove"])

    # Someone published meanwhile (here: the draft's base is made stale): the publish is refused,
    # and Refresh takes the playbook as it is now as the base.
    page.evaluate(f"""() => {{
        const draft = JSON.parse(sessionStorage.getItem('{DRAFT_KEY}'));
        draft.base_hash = '{"0" * 64}';
        sessionStorage.setItem('{DRAFT_KEY}', JSON.stringify(draft));
    }}""")
    page.reload()
    expect(page.locator("#draft-base")).to_have_text(
        "The playbook has changed since this draft was started.")
    page.click("#publish")
    expect(page.locator("#draft-status")).to_have_text(
        "The playbook changed since this draft was started (someone published or edited it). "
        "Refresh to take the current playbook as the base, check the draft again, then publish.")
    expect(page.locator("#refresh-base")).to_be_focused()
    assert conflicts == [CONFLICT]
    page.keyboard.press("Enter")
    expect(page.locator("#draft-status")).to_have_text(
        "The draft now builds on the current playbook: preview it again before publishing.")
    expect(page.locator("#refresh-base")).to_be_hidden()
    expect(page.locator("#draft-base")).to_have_text("")
    now = api(page, live, "GET", "/api/workbench/entries?limit=1")["knowledge_hash"]
    saved = json.loads(page.evaluate(f"() => sessionStorage.getItem('{DRAFT_KEY}')"))
    assert saved["base_hash"] == now
    assert GIFT_CARD not in [e["id"] for e in
                             api(page, live, "GET", "/api/workbench/entries?q=gift")["entries"]]

    page.get_by_role("button", name=f"Remove {GIFT_CARD} from the draft").click()
    expect(page.locator("#draft-list > li")).to_have_count(0)
    assert axe_violations(page) == []


def test_disabled_without_an_admin_token(tiny_settings: Settings, tiny_engine: Engine) -> None:
    page = TestClient(create_app(tiny_settings, tiny_engine)).get("/workbench")
    assert page.status_code == 503
    assert "the workbench is disabled: set PLAYBOOK_ADMIN_TOKEN" in page.text
    assert "workbench.js" not in page.text
