"""`playbook serve` and `playbook reload`: run the server, and make a running one reload."""

from __future__ import annotations

import sys

import click

from app.cli.context import Context


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=click.IntRange(1, 64),
              help="Server processes [default: PLAYBOOK_WORKERS, else 1].")
@click.pass_obj
def serve(context: Context, host: str, port: int, workers: int | None) -> None:
    """Serve the chat and the JSON API."""
    import os
    import tempfile

    import uvicorn

    from app.web.logs import configure_logging
    from app.web.main import start_app
    from app.web.server import server_options

    configure_logging()
    settings = context.settings
    if workers is not None:
        settings = settings.model_copy(update={"workers": workers})
    if settings.workers == 1:
        app = start_app(settings, Context(settings, context.make_embedder).engine)
        uvicorn.run(app, host=host, port=port, **server_options(settings))
        return
    from app.web.metrics import MULTIPROCESS_ENV  # here: the one-worker path never needs it

    # Each worker builds its own app from the environment; pass the CLI's folders along.
    os.environ.setdefault(MULTIPROCESS_ENV, tempfile.mkdtemp(prefix="playbook-metrics-"))
    os.environ["PLAYBOOK_KNOWLEDGE_DIR"] = str(settings.knowledge_dir)
    os.environ["PLAYBOOK_INDEX_DIR"] = str(settings.index_dir)
    os.environ["PLAYBOOK_WORKERS"] = str(settings.workers)  # each takes its share of the cores
    uvicorn.run("app.web.main:make_app", factory=True, host=host, port=port,
                workers=settings.workers, **server_options(settings))


@click.command("reload")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True,
              help="The running assistant.")
@click.option("--token", help="Admin token (default: PLAYBOOK_ADMIN_TOKEN, else the first of "
              "PLAYBOOK_ADMINS).")
@click.pass_obj
def reload_command(context: Context, url: str, token: str | None) -> None:
    """Make a running server reload the knowledge and swap its index, without a restart."""
    import httpx

    token = token or context.settings.admin_token or next(iter(context.settings.admin_tokens()), None)
    if not token:
        raise click.UsageError("an admin token is needed: --token, PLAYBOOK_ADMIN_TOKEN or "
                               "PLAYBOOK_ADMINS")
    try:
        response = httpx.post(f"{url.rstrip('/')}/api/admin/reload", timeout=600,
                              headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        click.echo(f"error: cannot reach {url}: {exc}", err=True)
        sys.exit(1)
    body = response.json() if response.headers.get("content-type") == "application/json" else {}
    if response.status_code != 200:
        click.echo(f"error: {response.status_code}: {body.get('detail', response.text)}", err=True)
        sys.exit(1)
    click.echo(f"{body['action']} {body['entries']} entries, {body['vectors']} vectors in "
               f"{body['seconds']:.1f}s" + (f" ({body['reason']})" if body["reason"] else ""))
