"""What the browser tests share: the seed playbook (plus a markup probe) served for real, and
helpers that drive the chat the way an agent does. The fixtures are in conftest.py."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Page, expect

from app.engine.engine import Engine
from app.records import Entry
from app.store.feedback import FeedbackStore
from tests.fakes import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"
TOKEN = "browser-test-token"

XSS_IMG = "<img src=x onerror=\"window.__xss='img'\">"
XSS_SCRIPT = "<script>window.__xss='script'</script>"
XSS_ENTRY = Entry(
    id="xss-probe",
    question=f"Markup probe {XSS_IMG} and {XSS_SCRIPT} in a question",
    answer=f"Answer with {XSS_SCRIPT} and {XSS_IMG}",
    macro=f"#XSS {XSS_IMG}",
    alternates=(f"{XSS_IMG} probe",),
    tags=("<b>tag</b>",),
)


@dataclass(frozen=True)
class Live:
    url: str
    engine: Engine
    store: FeedbackStore


def ask(page: Page, question: str) -> None:
    count = page.locator("#conversation > li").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    expect(page.locator("#conversation > li")).to_have_count(count + 2)
    expect(page.locator("#conversation > li").last.locator(".pending")).to_have_count(0)


def percent(confidence: float) -> str:
    return f"{math.floor(confidence * 100 + 0.5)}%"  # JavaScript's Math.round


def policy_lines(entry: Entry) -> list[str]:
    """The card's policy paragraph: none when the answer is the macro itself."""
    return [] if entry.answer == entry.macro else [entry.answer]


def screenshot(page: Page, name: str, full_page: bool = False) -> None:
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


# The first queue load embeds every logged question with the real model (and may open the
# encoder's second session): on a loaded CI machine it once took longer than Playwright's 5 s.
FIRST_LOAD_MS = 30_000


def unlock_review(page: Page, live: Live) -> None:
    page.goto(live.url + "/review")
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    expect(page.locator("#queue .group")).to_have_count(3, timeout=FIRST_LOAD_MS)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now, each as its rule and the elements."""
    from axe_playwright_python.sync_playwright import Axe  # the browser extra only

    results = Axe().run(page)
    return [{"rule": v["id"], "impact": v["impact"],
             "targets": [node["target"] for node in v["nodes"]]}
            for v in results.response["violations"]]
