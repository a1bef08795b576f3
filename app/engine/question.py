"""What counts as a question: the checks every adapter applies before the engine sees the text."""

from __future__ import annotations

import unicodedata

from app.errors import InvalidQuestion


def clean_question(text: str, max_chars: int, lines: bool = False) -> str:
    """The text checked, with its runs of spaces made one; `lines` keeps its line breaks (one per
    run of them): a pasted email's or chat's lines are where its sentences end."""
    question = text.strip()
    # Zero-width and other invisible format characters alone are no question either.
    if not question or all(unicodedata.category(c) in ("Cf", "Zs") for c in question):
        raise InvalidQuestion("the question is empty")
    if len(text) > max_chars:  # as sent, spaces included: the limit the API schema states
        raise InvalidQuestion(f"the question is {len(text)} characters long; "
                              f"the limit is {max_chars}")
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in question):
        raise InvalidQuestion("the question contains control characters")
    if any(unicodedata.category(c) == "Cs" for c in question):
        # JSON can smuggle in a lone "\ud800" escape, which no encoder or response can encode.
        raise InvalidQuestion("the question is not valid Unicode: it holds an unpaired surrogate")
    if not lines:
        return " ".join(question.split())
    kept = (" ".join(line.split()) for line in question.splitlines())
    return "\n".join(line for line in kept if line)
