"""The `playbook` executable."""

from __future__ import annotations

from app.collector import collector_paused


def run() -> None:
    """Import the command line with the collector paused (its libraries, pydantic and numpy
    among them, are a third of `playbook serve`'s start), then run it."""
    with collector_paused():
        from app.cli.main import main
    main()
