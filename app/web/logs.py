"""Server logs: one JSON object per line on stdout, for every logger (uvicorn's included), each
with an ISO 8601 UTC timestamp and a level, so a log shipper needs no parsing rules."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Set by a caller as `extra={"fields": {...}}`: merged into the line (the access log's fields).
FIELDS = "fields"


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Send every log record, as a JSON line, to stdout (idempotent: a worker process and the
    parent may both call it). uvicorn is run with `log_config=None`, so its loggers propagate
    here instead of installing their own plain-text handlers."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonLines):
            return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLines())
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(level)
    # Their INFO lines are per outbound request (with Slack's response_url in them) or noise.
    for name in ("httpx", "httpcore", "faiss.loader"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
