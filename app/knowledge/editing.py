"""Edits of playbook.yaml that several processes (server workers, `playbook review add`) may make
at the same moment: each holds an exclusive lock on a file beside it, reads the playbook as it is
under the lock, and writes atomically, so no edit is lost. An added alternate is written into
the file's text as one new line, so comments, order, quoting and the file's mode are kept.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml

from app.errors import EntryNotFound, KnowledgeError
from app.knowledge.conditions import Slot
from app.knowledge.playbook import (
    KnowledgeBase,
    display_path,
    dump_playbook_yaml,
    parse_playbook_yaml,
)
from app.knowledge.text import question_key

LOCK_FILE = ".playbook.lock"


@contextmanager
def knowledge_lock(folder: Path) -> Iterator[None]:
    """Exclusive, across processes on this host, for as long as the block runs."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _alternates_node(text: str, entry_id: str) -> yaml.Node | None:
    """The block sequence holding the entry's alternates, if the entry has a non-empty one."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return None
    entries = next((v for k, v in root.value if k.value == "entries"), None)
    for entry in entries.value if isinstance(entries, yaml.SequenceNode) else []:
        fields = {k.value: v for k, v in entry.value}
        if fields.get("id") is not None and fields["id"].value == entry_id:
            node = fields.get("alternates")
            if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
                return node
    return None


def with_alternate_line(text: str, entry_id: str, phrasing: str) -> str | None:
    """The playbook text with `phrasing` as one more line of the entry's alternates, or None when
    the entry has no block list to extend."""
    node = _alternates_node(text, entry_id)
    if node is None:
        return None
    end = text.find("\n", node.value[-1].end_mark.index)  # after a comment on the last item
    end = len(text) if end < 0 else end
    indent = " " * node.start_mark.column
    return f"{text[:end]}\n{indent}- {_scalar(phrasing)}{text[end:]}"


def _scalar(text: str) -> str:
    """`text` as the YAML scalar the rest of the file would use: plain when it can be, quoted
    when it must be ("#SD - ..." would otherwise be a comment)."""
    dumped: str = yaml.safe_dump(text, allow_unicode=True, width=1_000_000)
    return dumped.split("\n", 1)[0]


def with_alternates(text: str, path: Path, slots: dict[str, Slot], entry_id: str,
                    phrasings: Sequence[str]) -> str:
    """The playbook text with the phrasings as new lines of the entry's alternates (those it
    has already are skipped), parsed back and checked to change nothing else."""
    before = parse_playbook_yaml(text, path, slots)
    if before.entry(entry_id) is None:
        raise EntryNotFound(entry_id)
    edited: str | None = text
    expected = before
    for phrasing in phrasings:
        entry = expected.entry(entry_id)
        if entry is None or phrasing in entry.alternates:
            continue
        expected = expected.with_alternate(entry_id, phrasing)
        if edited is not None:
            edited = with_alternate_line(edited, entry_id, phrasing)
    if edited is None:  # no block list to extend: write the whole playbook (comments are lost)
        edited = dump_playbook_yaml(expected.entries, expected.needs_review, expected.retired)
    after = parse_playbook_yaml(edited, path, slots)
    if _entries(after) != _entries(expected):
        raise KnowledgeError(display_path(path), None,
                             f"adding alternates to {entry_id!r} would change other entries; "
                             "edit the file by hand")
    return edited


def _entries(kb: KnowledgeBase) -> list[tuple[str, tuple[str, ...]]]:
    return [(e.id, (e.question, e.answer, str(e.macro), *e.alternates)) for e in kb.entries]


def with_out_of_scope(text: str, questions: Sequence[str]) -> str:
    """out_of_scope.txt's text with the questions as new lines (those it has are skipped)."""
    known = {question_key(line) for line in text.splitlines()}
    new = [q for q in dict.fromkeys(questions) if question_key(q) not in known]
    if not new:
        return text
    return text + ("\n" if text and not text.endswith("\n") else "") + "".join(
        f"{q}\n" for q in new)
