"""The English word list is read faster, and is the same set of words."""

from __future__ import annotations

from importlib import resources

from app.knowledge.spelling import english_words


def test_the_english_words_are_the_lists_first_column() -> None:
    listing = resources.files("symspellpy").joinpath("frequency_dictionary_en_82_765.txt")
    lines = listing.read_text(encoding="utf-8").splitlines()
    by_line = frozenset(line.partition(" ")[0] for line in lines)  # how it was read before
    words = english_words()
    assert words == by_line
    assert len(words) == len(lines) == 82_834
    assert {"the", "customer", "cancel", "refund", "o'clock"} <= words
    assert not {"23135851162", "", "the 23135851162"} & words
