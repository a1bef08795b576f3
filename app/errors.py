"""Domain errors. The CLI maps them to exit codes and the HTTP layer to status codes."""

from __future__ import annotations


class PlaybookError(Exception):
    """Base class for every error the assistant reports to a person."""

    exit_code = 1
    http_status = 500


class SettingsInvalid(PlaybookError):
    """A PLAYBOOK_* setting (environment or .env) has a value it cannot take."""

    exit_code = 2


class InvalidQuestion(PlaybookError):
    """The question is empty, too long or otherwise unusable."""

    exit_code = 2
    http_status = 422


class KnowledgeError(PlaybookError):
    """A knowledge file is broken: the message names the file, the line and the problem."""

    exit_code = 3
    http_status = 422

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file = file
        self.line = line
        self.problem = problem
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {problem}")


class EntryNotFound(PlaybookError):
    exit_code = 4
    http_status = 404

    def __init__(self, entry_id: str) -> None:
        self.entry_id = entry_id
        super().__init__(f"no entry with id {entry_id!r}")


class IndexInvalid(PlaybookError):
    """The built index is missing, stale or corrupt (the engine rebuilds; the CLI reports)."""

    exit_code = 5
    http_status = 503


class ModelError(PlaybookError):
    """The local embedding model cannot be found or loaded."""

    exit_code = 6
    http_status = 503


class EngineNotReady(PlaybookError):
    """The engine is still loading or rebuilding its index."""

    exit_code = 7
    http_status = 503


class QueryFileError(KnowledgeError):
    """A query file is broken: the message names the file, the line and the problem."""


class FeedbackNotSaved(PlaybookError):
    """The database could not be written (locked, read-only, unreachable)."""

    exit_code = 8
    http_status = 503

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"feedback not saved: {reason}")


class QueryNotFound(PlaybookError):
    exit_code = 4
    http_status = 404

    def __init__(self, query_id: int) -> None:
        self.query_id = query_id
        super().__init__(f"no logged question with id {query_id} "
                         "(query logging may be off, or the question has expired)")


class InvalidFeedback(PlaybookError):
    exit_code = 2
    http_status = 422


class AlternateConflict(PlaybookError):
    """A phrasing that would make two entries compete: it is already another entry's, or it sits
    closer to another entry's texts than to the one it would be added to."""

    exit_code = 9
    http_status = 409


class KnowledgeChanged(PlaybookError):
    """The knowledge changed after the editor read it: applying the edit would undo someone
    else's change."""

    exit_code = 10
    http_status = 409

    def __init__(self) -> None:
        super().__init__("the playbook changed since this draft was started (someone published "
                         "or edited it); reload, check the draft against it, and publish again")


class VersionNotFound(PlaybookError):
    exit_code = 2
    http_status = 404

    def __init__(self, version: int) -> None:
        super().__init__(f"no knowledge version {version} in the history")
        self.version = version


class DraftRefused(PlaybookError):
    """A draft that fails its checks against the playbook as it is (an unknown slot, a
    phrasing another card owns, ...): nothing is written."""

    exit_code = 3
    http_status = 409

    def __init__(self, entry_id: str, problem: str) -> None:
        where = f"draft entry {entry_id}: " if entry_id else "draft: "
        super().__init__(f"{where}{problem}")
