from __future__ import annotations

import pytest

from app.knowledge.macros import extract_macro, macro_problem, normalize_dashes


@pytest.mark.parametrize(
    ("answer", "macro"),
    [
        ("send #Cl – Lost in Transit Wait", "#Cl – Lost in Transit Wait"),
        ("#SD - Too Late - Can't Change Shipping Address (RP)",
         "#SD - Too Late - Can't Change Shipping Address (RP)"),
        ("Create a new side conversation to the vendor in Intercom using the #VD - Cancel macro",
         "#VD - Cancel"),
        ("#RE - Non-Returnable", "#RE - Non-Returnable"),
        ("OM Cancellation Process", None),
        ("#SD - Warranty Not Covered", "#SD - Warranty Not Covered"),
        ("Send the #RE - Assembly Manual macro.", "#RE - Assembly Manual"),
        ("3-5 business days", None),
        ("Tag it #urgent and move on", None),
    ],
)
def test_extract_macro(answer: str, macro: str | None) -> None:
    assert extract_macro(answer) == macro


@pytest.mark.parametrize(
    ("macro", "problem"),
    [
        ("#SD - Too Late to Cancel", None),
        ("#Cl – Lost in Transit Wait", None),
        ("#SD Too Late", "expected '#XX - Name' (a '#', a short code, a spaced dash, then the name)"),
        ("SD - Too Late", "expected '#XX - Name' (a '#', a short code, a spaced dash, then the name)"),
    ],
)
def test_macro_problem(macro: str, problem: str | None) -> None:
    assert macro_problem(macro) == problem


def test_dashes_fold_to_hyphen() -> None:
    assert normalize_dashes("#Cl – Lost — Wait") == "#Cl - Lost - Wait"
