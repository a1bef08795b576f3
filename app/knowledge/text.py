"""When two questions are the same question."""

from __future__ import annotations

import re

from app.knowledge.macros import normalize_dashes


def question_key(text: str) -> str:
    """Questions that differ only in case, punctuation, dashes or spacing are the same card."""
    folded = normalize_dashes(text).casefold().replace("’", "'")
    return " ".join(re.findall(r"[\w']+", folded))
