"""The browser tests' fixtures: the real app, model and seed playbook (plus the markup probe)
served on a loopback port, Debian's Chromium, and a page whose script errors fail the test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, sync_playwright

from app.config import Settings
from app.engine.engine import Engine
from app.knowledge.playbook import load_knowledge, save_playbook
from app.web.app import create_app
from tests.browser.live_app import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, TOKEN, XSS_ENTRY, Live
from tests.fakes import PROJECT_ROOT, serve_in_thread


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, seed_engine: Engine) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("live")
    knowledge_dir = root / "knowledge"
    shutil.copytree(PROJECT_ROOT / "knowledge", knowledge_dir)
    playbook = load_knowledge(knowledge_dir / "playbook.yaml")
    save_playbook(playbook.__class__(entries=(*playbook.entries, XSS_ENTRY),
                                     needs_review=playbook.needs_review),
                  knowledge_dir / "playbook.yaml")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        knowledge_dir=knowledge_dir, index_dir=root / "index", db_path=root / "feedback.sqlite3",
        admin_token=TOKEN, encoder=seed_engine.settings.encoder)
    engine = Engine(settings, seed_engine.embedder)  # the model is loaded once per session
    engine.load()
    app = create_app(settings, engine)
    with serve_in_thread(app) as url:
        yield Live(url, engine, app.state.feedback_store)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, live: Live) -> Iterator[BrowserContext]:
    # Reduced motion: the page scrolls without animation, so screenshots are not mid-scroll.
    ctx = browser.new_context(viewport={"width": 1100, "height": 900}, reduced_motion="reduce")
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    yield ctx
    ctx.close()


@pytest.fixture
def problems() -> list[str]:
    return []


@pytest.fixture
def confirms() -> list[str]:
    """A test puts here how a confirm() it expects begins; each one shown is accepted and
    replaced by its whole message. Any other dialog fails the test."""
    return []


@pytest.fixture
def page(context: BrowserContext, live: Live, problems: list[str],
         confirms: list[str]) -> Iterator[Page]:
    opened = context.new_page()

    def on_dialog(dialog: Dialog) -> None:
        expected = [i for i, start in enumerate(confirms) if dialog.message.startswith(start)]
        if dialog.type == "confirm" and expected:
            confirms[expected[0]] = dialog.message
            dialog.accept()
        else:
            problems.append(f"dialog: {dialog.message}")
            dialog.dismiss()

    # A CSP violation, a script error or an alert() all fail the test.
    opened.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
              if m.type == "error" else None)
    opened.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    opened.on("dialog", on_dialog)
    opened.goto(live.url + "/")
    yield opened
    assert problems == []
