"""Slack text in, Block Kit out: questions from Slack markup, answers as Slack messages.

Every piece of knowledge-base or user text goes through `escape_mrkdwn`, so `<!channel>` or
`<https://evil|click>` shows as typed instead of pinging a channel or forging a link.
"""

from __future__ import annotations

import re
from typing import Any

from app.records import Answer, Match, confidence_band

Message = dict[str, Any]
Block = dict[str, Any]

SHOWN_ALTERNATIVES = 2
SHOWN_SUGGESTIONS = 3
TEXT_LIMIT = 3000  # Slack rejects a section or context text longer than this
FALLBACK_LIMIT = 3000  # the notification text; Slack allows more, nobody reads more

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LEADING_MENTIONS = re.compile(r"^\s*(?:<@[UW][A-Z0-9]+(?:\|[^>]*)?>\s*)+")


def escape_mrkdwn(text: str) -> str:
    """The three characters Slack wants escaped; everything else is shown as is."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_slack(text: str) -> str:
    """Slack sends typed `&`, `<`, `>` escaped; turn them back before asking the engine."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def question_from_slack(text: str, bot_user_id: str | None = None) -> str:
    """The question in a slash command or mention: the app's own `<@BOTID>` removed (any
    leading mention when the id is unknown), Slack's escapes undone."""
    if bot_user_id:
        text = _MENTION.sub(lambda m: "" if m.group(1) == bot_user_id else m.group(0), text)
    else:
        text = _LEADING_MENTIONS.sub("", text)
    return " ".join(unescape_slack(text).split())


def split_public_keyword(text: str) -> tuple[str, bool]:
    """`public` as the first or last word asks for an in-channel reply; it is not part of
    the question."""
    words = text.split()
    public = False
    if words and words[0].casefold() == "public":
        words.pop(0)
        public = True
    if words and words[-1].casefold() == "public":
        words.pop()
        public = True
    return " ".join(words), public


def answer_message(answer: Answer) -> Message:
    """The answer card: policy answer, macro, what matched and how sure, up to two others. An
    answer that is just the macro is shown once, as the macro."""
    if not answer.matched or answer.best is None:
        return no_match_message(answer)
    entry = answer.best.entry
    blocks: list[Block] = []
    if entry.policy is not None:
        blocks.append(_section(escape_mrkdwn(entry.policy)))
    if entry.macro:
        blocks.append(_section(f"*Macro to send*\n{code_block(entry.macro)}"))
    context = f"Matched “{escape_mrkdwn(entry.question)}” · {percent(answer.best)}"
    if answer.ambiguous:
        context += " · close call: check the alternatives"
    if entry.conditions:
        context += " · applies when " + escape_mrkdwn("; ".join(c.describe() for c in entry.conditions))
    blocks.append(_context(context))
    blocks.extend(_ruled_out(answer))
    alternatives = answer.alternatives[:SHOWN_ALTERNATIVES]
    if alternatives:
        lines = "\n".join(_match_line(m) for m in alternatives)
        blocks.append(_section(f"*Also possible*\n{lines}"))
    fallback = entry.answer
    if entry.macro and entry.policy is not None:
        fallback += f" (macro: {entry.macro})"
    return {"text": _clip(escape_mrkdwn(fallback), FALLBACK_LIMIT), "blocks": blocks}


def no_match_message(answer: Answer) -> Message:
    headline = f"*No confident match* in the playbook for “{escape_mrkdwn(answer.question)}”."
    blocks: list[Block] = [_section(headline), *_ruled_out(answer)]
    suggestions = answer.alternatives[:SHOWN_SUGGESTIONS]
    if suggestions:
        lines = "\n".join(_match_line(m) for m in suggestions)
        blocks.append(_section(f"*Closest entries* (check before using)\n{lines}"))
    else:
        blocks.append(_section("Nothing in the playbook comes close."))
    return {"text": "No confident match in the playbook.", "blocks": blocks}


def _ruled_out(answer: Answer) -> list[Block]:
    """Close cards the question rules out, each with the reason."""
    if not answer.ruled_out:
        return []
    lines = "\n".join(f"• “{escape_mrkdwn(r.match.entry.question)}”: it {escape_mrkdwn(r.reason)}"
                      for r in answer.ruled_out[:SHOWN_SUGGESTIONS])
    return [_section(f"*Not this card*\n{lines}")]


def help_message(command: str = "/playbook") -> Message:
    name = escape_mrkdwn(command or "/playbook")
    usage = "\n".join([
        "*Ask the support playbook* for the policy answer and the macro to send.",
        f"`{name} <question>`: e.g. `{name} customer wants to change address on a best buy "
        "order` (only you see the answer)",
        f"`{name} public <question>`: post the answer in the channel",
        f"`{name} help`: this message",
        "You can also mention the app in a channel, or send it a direct message.",
    ])
    return {"text": "How to ask the support playbook.", "blocks": [_section(usage)]}


def notice_message(text: str) -> Message:
    """A one-line message: an acknowledgement or an apology."""
    return {"text": _clip(escape_mrkdwn(text), FALLBACK_LIMIT)}


def code_block(text: str) -> str:
    """A copyable code block. Slack still decodes `&amp;` `&lt;` `&gt;` inside code blocks
    (and would parse a raw `<...>`), so escaping stays; the copied text is the original."""
    return f"```{escape_mrkdwn(text)}```"


def percent(match: Match) -> str:
    return f"confidence {round(match.confidence * 100)}% ({confidence_band(match.confidence)})"


def _match_line(match: Match) -> str:
    line = f"• “{escape_mrkdwn(match.entry.question)}”"
    if match.entry.macro:
        line += f" → `{escape_mrkdwn(match.entry.macro)}`"
    return f"{line} · {percent(match)}"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, TEXT_LIMIT)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, TEXT_LIMIT)}]}


def _clip(text: str, limit: int) -> str:
    """Shorten escaped text to `limit` characters without cutting an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", len(cut) - 4)
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"
