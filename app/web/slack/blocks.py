"""Slack text in, Block Kit out: questions from Slack markup, answers as Slack messages.

Every piece of knowledge-base or user text goes through `escape_mrkdwn`, so `<!channel>` or
`<https://evil|click>` shows as typed instead of pinging a channel or forging a link.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from app.records import NEEDS_DETAIL, Answer, Entry, Match, confidence_band

Message = dict[str, Any]
Block = dict[str, Any]

SHOWN_ALTERNATIVES = 2
SHOWN_SUGGESTIONS = 3
# Below this an alternative is noise ("0 % (low)"): left out of answers, and of public replies.
ALTERNATIVE_FLOOR = 0.10
ANSWER_PREVIEW = 200  # characters of an alternative's answer shown under it
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


@dataclass(frozen=True)
class Buttons:
    """What a private reply's buttons need: the logged question and its feedback token (the
    same proof the chat sends), and whether it can still be shared in the channel."""

    query_id: int
    token: str
    shareable: bool = True

    def value(self, **extra: object) -> str:
        return json.dumps({"q": self.query_id, "t": self.token, **extra}, separators=(",", ":"))


def answer_message(answer: Answer, buttons: Buttons | None = None) -> Message:
    """The answer card: the question echoed, policy answer, macro, what matched and how sure,
    up to two others that carry real probability (each with its answer and macro). An answer
    that is just the macro is shown once, as the macro. With `buttons` (private replies): 👍/👎,
    "Show" on each alternative, "Share in channel"."""
    if not answer.matched or answer.best is None:
        return no_match_message(answer, buttons)
    entry = answer.best.entry
    blocks: list[Block] = [_asked(answer.question), *_card(entry)]
    context = f"Matched “{escape_mrkdwn(entry.question)}” · {percent(answer.best)}"
    if answer.ambiguous:
        context += " · close call: check the alternatives"
    if entry.conditions:
        context += " · applies when " + escape_mrkdwn("; ".join(c.describe() for c in entry.conditions))
    blocks.append(_context(context))
    blocks.extend(_ruled_out(answer))
    alternatives = [m for m in answer.alternatives[:SHOWN_ALTERNATIVES]
                    if m.confidence >= ALTERNATIVE_FLOOR]
    if alternatives:
        blocks.append(_section("*Also possible*"))
        blocks.extend(_alternative(m, buttons) for m in alternatives)
    if buttons is not None:
        blocks.append(_actions(buttons))
    return {"text": _clip(escape_mrkdwn(_fallback(entry)), FALLBACK_LIMIT), "blocks": blocks}


def no_match_message(answer: Answer, buttons: Buttons | None = None) -> Message:
    headline = f"*No confident match* in the playbook for “{escape_mrkdwn(answer.question)}”."
    blocks: list[Block] = [_section(headline), *_ruled_out(answer)]
    if answer.needs_detail:
        blocks.append(_section(NEEDS_DETAIL))
    if answer.out_of_scope is not None:
        blocks.append(_section("*Not in the playbook*: it is nearest to “"
                               f"{escape_mrkdwn(answer.out_of_scope)}”, a question the playbook "
                               "marks as one it does not answer."))
    # In private the agent wants somewhere to start; in the channel, only what is likely.
    suggestions = [m for m in answer.alternatives[:SHOWN_SUGGESTIONS]
                   if buttons is not None or m.confidence >= ALTERNATIVE_FLOOR]
    if suggestions:
        blocks.append(_section("*Closest entries* (check before using)"))
        blocks.extend(_alternative(m, buttons) for m in suggestions)
    else:
        blocks.append(_section("Nothing in the playbook comes close."))
    if buttons is not None:
        blocks.append(_actions(buttons))
    return {"text": "No confident match in the playbook.", "blocks": blocks}


def shown_entry_message(question: str, entry: Entry, confidence: float,
                        buttons: Buttons | None) -> Message:
    """An alternative the agent chose to see ("Show"), in place of the first answer. Its 👍
    tells the review queue this card was the right one."""
    blocks: list[Block] = [_asked(question), *_card(entry), _context(
        f"You chose “{escape_mrkdwn(entry.question)}” from the alternatives · confidence "
        f"{round(confidence * 100)}% ({confidence_band(confidence)})")]
    if buttons is not None:
        blocks.append(_actions(buttons, picked=entry.id))
    return {"text": _clip(escape_mrkdwn(_fallback(entry)), FALLBACK_LIMIT), "blocks": blocks}


def _asked(question: str) -> Block:
    return _context(f"You asked: “{escape_mrkdwn(question)}”")


def _card(entry: Entry) -> list[Block]:
    blocks: list[Block] = []
    if entry.policy is not None:
        blocks.append(_section(escape_mrkdwn(entry.policy)))
    if entry.macro:
        blocks.append(_section(f"*Macro to send*\n{code_block(entry.macro)}"))
    return blocks


def _fallback(entry: Entry) -> str:
    if entry.macro and entry.policy is not None:
        return f"{entry.answer} (macro: {entry.macro})"
    return entry.answer


def _alternative(match: Match, buttons: Buttons | None) -> Block:
    entry = match.entry
    text = f"• “{escape_mrkdwn(entry.question)}” · {percent(match)}"
    if entry.policy is not None:
        text += f"\n{escape_mrkdwn(_preview(entry.policy))}"
    if entry.macro:
        text += f"\nMacro: `{escape_mrkdwn(entry.macro)}`"
    block = _section(text)
    if buttons is not None:
        block["accessory"] = _button("Show", "show_alternative",
                                     buttons.value(e=entry.id, c=round(match.confidence, 4)))
    return block


def _preview(text: str) -> str:
    return text if len(text) <= ANSWER_PREVIEW else text[: ANSWER_PREVIEW - 1].rstrip() + "…"


def _actions(buttons: Buttons, picked: str | None = None) -> Block:
    # 👍 on a card chosen from the alternatives means "this one, not the first answer".
    up = buttons.value(e=picked) if picked else buttons.value()
    elements = [_button("👍 Right", "feedback_up", up),
                _button("👎 Wrong", "feedback_down", buttons.value())]
    if buttons.shareable and picked is None:
        elements.append(_button("Share in channel", "share", buttons.value()))
    return {"type": "actions", "elements": elements}


def _button(label: str, action_id: str, value: str) -> Block:
    return {"type": "button", "text": {"type": "plain_text", "text": label, "emoji": True},
            "action_id": action_id, "value": value}


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
