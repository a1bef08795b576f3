from __future__ import annotations

import pytest

from app.knowledge.glossary import Glossary

GLOSSARY = Glossary({"PO": "purchase order", "PO Box": "post office box", "OOS": "out of stock",
                     "cx": "customer"})


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("cx says item is OOS", "cx (customer) says item is OOS (out of stock)"),
        ("po stuck", "po (purchase order) stuck"),
        ("ship to a PO Box?", "ship to a PO Box (post office box)?"),
        ("PO (purchase order) already spelled out", "PO (purchase order) already spelled out"),
        ("POS terminal and PO-123", "POS terminal and PO-123"),
        ("nothing to expand", "nothing to expand"),
    ],
)
def test_expand(text: str, expanded: str) -> None:
    assert GLOSSARY.expand(text) == expanded


def test_empty_glossary_leaves_text_alone() -> None:
    assert Glossary({}).expand("PO stuck") == "PO stuck"
