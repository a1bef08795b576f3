"""Macro names inside answers: `#SD - Too Late to Cancel`, `#Cl – Lost in Transit Wait`, ..."""

from __future__ import annotations

import re

DASHES = "-–—"

# A macro starts with '#', a short category code, a dash (any kind) and a name that runs to
# the end of the answer. A trailing "macro" word or full stop is prose, not part of the name.
_MACRO = re.compile(rf"#[A-Za-z]{{1,6}}\s*[{DASHES}]\s*\S.*$")
_TRAILING_PROSE = re.compile(r"(\s+macro)?[.\s]*$", re.IGNORECASE)
_WELL_FORMED = re.compile(rf"^#[A-Z][A-Za-z]{{1,5}} [{DASHES}] \S(.*\S)?$")


def extract_macro(answer: str) -> str | None:
    """Return the macro named in an answer, verbatim (dashes and quotes as written), or None."""
    found = _MACRO.search(answer)
    if found is None:
        return None
    name = _TRAILING_PROSE.sub("", found.group(0))
    return name or None


def macro_problem(macro: str) -> str | None:
    """Why a macro name looks malformed, or None when it looks like the others."""
    if not _WELL_FORMED.match(macro):
        return "expected '#XX - Name' (a '#', a short code, a spaced dash, then the name)"
    if macro != macro.strip():
        return "leading or trailing whitespace"
    return None


def normalize_dashes(text: str) -> str:
    """Fold en and em dashes to '-' so the two spellings of one macro compare equal."""
    return text.translate({ord("–"): "-", ord("—"): "-"})
