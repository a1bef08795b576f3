"""Answer a question and log it for review, in one step shared by the chat and Slack."""

from __future__ import annotations

import logging
from collections.abc import Collection

from app.engine.engine import Engine
from app.errors import FeedbackNotSaved
from app.records import Answer
from app.store.feedback import Channel, FeedbackStore

# Logged under the adapter that asked, where its operators look.
LOGGERS = {"web": "playbook.chat", "slack": "playbook.slack", "cli": "playbook.cli"}


def ask_and_log(engine: Engine, store: FeedbackStore, question: str, *, channel: Channel,
                top_k: int | None = None, tags: Collection[str] = ()) -> tuple[Answer, int | None]:
    """The answer, and its query id for feedback (None when the log could not be written: the
    agent still gets the answer)."""
    answer = engine.ask(question, top_k=top_k, tags=tags)
    try:
        return answer, store.log_query(answer, channel=channel)
    except FeedbackNotSaved as exc:
        logging.getLogger(LOGGERS[channel]).warning(
            "question not logged, answering anyway: %s", exc)
        return answer, None
