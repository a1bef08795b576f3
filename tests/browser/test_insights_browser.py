"""The insights page in Debian's Chromium: unlocked with the review page's session, it shows the
period's figures from the live store; axe finds nothing at 1280 and 360 px, light and dark.

Screenshots: artifacts/screenshots/insights-*.png.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from app.store.feedback import Feedback
from tests.browser.live_app import TOKEN, Live, axe_violations, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.model]

ASKED = ["customer wants to cancel an order that has not shipped",
         "how long does shipping take", "how long does shipping take",
         "what's the best pizza place near the office"]


def test_the_week_at_a_glance(page: Page, live: Live) -> None:
    for question in ASKED:
        answer = live.engine.ask(question)
        live.store.log_query(answer, "web")
    first = live.store.queries()[-len(ASKED)].id
    live.store.record_feedback(first, Feedback("down"))

    page.goto(live.url + "/insights")
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    expect(page.locator("#report")).to_be_visible()
    figures = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.tile')]
        .map(t => [t.querySelector('dt').textContent, t.querySelector('dd').firstChild.textContent]))""")
    body = page.request.get(live.url + "/api/insights",
                            headers={"X-Playbook-Admin": "1"}).json()
    assert body["asked"] >= len(ASKED)
    assert figures["Questions"] == str(body["asked"])
    assert figures["No confident match"] == f"{round(body['shares']['refused'] * 100)}%"
    expect(page.locator("#chart svg rect")).not_to_have_count(0)
    expect(page.locator("#days-title")).to_have_text("Questions per day")
    shipping = page.locator("#cards tbody tr", has_text="Our SLA for shipping most orders is")
    expect(shipping).to_have_count(1)
    expect(page.locator("#unanswered li", has_text="pizza place")).to_have_count(1)
    assert axe_violations(page) == []
    screenshot(page, "insights-week.png", full_page=True)

    page.reload()  # the session cookie keeps it unlocked
    expect(page.locator("#report")).to_be_visible()
    page.select_option("#period", "30")
    today = datetime.now(UTC).date()
    expect(page.locator(".tile").first).to_contain_text(
        f"{today - timedelta(days=29)} – {today}")
    expect(page.locator("#chart svg rect").first).to_be_visible()
    assert page.locator("#weeks tbody tr").count() in (5, 6)  # 30 days touch 5 or 6 weeks

    page.set_viewport_size({"width": 360, "height": 800})
    page.emulate_media(color_scheme="dark")
    assert axe_violations(page) == []
    screenshot(page, "insights-360-dark.png", full_page=True)
