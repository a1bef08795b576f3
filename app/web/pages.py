"""The HTML pages: the chat, and the review page (which holds no data: it asks for the admin
token and fetches the queue with it)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.engine.engine import Engine
from app.web.deps import EngineDep, SettingsDep

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
REVIEW_DISABLED = "review is disabled: set PLAYBOOK_ADMIN_TOKEN"

router = APIRouter(include_in_schema=False)


@cache
def templates() -> Jinja2Templates:
    """The page templates, made when a page is first asked for: Jinja is not imported at start
    (~35 ms of `playbook serve`'s start-up, for pages an agent's first question never needs)."""
    import jinja2
    from fastapi.templating import Jinja2Templates

    return Jinja2Templates(env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True))


def _render(request: Request, name: str, context: dict[str, Any],
            status_code: int = 200) -> HTMLResponse:
    return templates().TemplateResponse(request, name, context, status_code=status_code)


def example_questions(engine: Engine, count: int = 3) -> list[str]:
    """A first phrasing from a few entries, to show a newcomer what to type."""
    return [(e.alternates[0] if e.alternates else e.question) for e in engine.entries()[:count]]


@router.get("/", response_class=HTMLResponse)
def chat_page(request: Request, engine: EngineDep, settings: SettingsDep) -> HTMLResponse:
    return _render(request, "chat.html", {
        "page": "chat",
        "examples": example_questions(engine),
        "max_question_chars": settings.max_question_chars,
        "retention_days": settings.retention_days,
    })


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    # The page holds no data: it asks for the token and fetches the queue with it.
    if not settings.admin_tokens():
        return _render(request, "review.html",
                       {"page": "review", "enabled": False, "message": REVIEW_DISABLED},
                       status_code=503)
    return _render(request, "review.html", {"page": "review", "enabled": True, "message": ""})


def _admin_page(request: Request, settings: SettingsDep, page: str, name: str) -> HTMLResponse:
    # Like the review page: no data in the HTML; everything comes from the admin API.
    enabled = bool(settings.admin_tokens())
    return _render(
        request, f"{page}.html",
        {"page": page, "enabled": enabled,
         "message": "" if enabled else REVIEW_DISABLED.replace("review", name)},
        status_code=200 if enabled else 503)


@router.get("/insights", response_class=HTMLResponse)
def insights_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    return _admin_page(request, settings, "insights", "insights")


@router.get("/workbench", response_class=HTMLResponse)
def workbench_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    return _admin_page(request, settings, "workbench", "the workbench")


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json, from the vendored copy in static/vendor."""
    return _render(request, "docs.html", {})
