"""Scoring transcripts (polyphone.speech.score): word error rate and the `heard` rule."""

from __future__ import annotations

import pytest

from polyphone.speech.score import DEFAULT_HEARD_THRESHOLD, heard, normalise, wer


def test_normalise_ignores_case_and_punctuation_and_spells_numbers():
    assert normalise("Table-for-two, PLEASE!") == ["table", "for", "two", "please"]
    assert normalise("Don’t  cancel... it's fine") == ["dont", "cancel", "its", "fine"]
    assert normalise("a table for 2 at 7:30") == ["a", "table", "for", "two", "at", "seven", "thirty"]
    assert normalise("2024 and 100 and 15 and 0") == ["two", "thousand", "twenty", "four", "and",
                                                      "one", "hundred", "and", "fifteen", "and", "zero"]
    assert normalise("Café au lait") == ["café", "au", "lait"]
    assert normalise("") == normalise("  ?! ") == []


def test_wer_counts_substitutions_deletions_and_insertions():
    assert wer("book a table for two", "book a table for two") == 0.0
    assert wer("book a table for two", "look a table for two") == pytest.approx(0.2)
    assert wer("book a table for two", "book table for two") == pytest.approx(0.2)
    assert wer("book a table for two", "book a big table for two") == pytest.approx(0.2)
    assert wer("book a table for two", "") == 1.0
    assert wer("cancel", "please do cancel it now") == pytest.approx(4.0)   # insertions: over 1
    assert wer("Book a TABLE, for two!", "book a table for 2") == 0.0


def test_wer_of_empty_references():
    assert wer("", "") == 0.0
    assert wer("?!", "") == 0.0
    assert wer("", "something") == 1.0


def test_heard_exact_phrase_inside_a_longer_transcript():
    assert heard("table for two", "yes I can book a table for two at seven") == (True, 1.0)
    assert heard("table for two", "table for two") == (True, 1.0)


def test_heard_forgives_one_wrong_word_at_the_default_threshold():
    assert DEFAULT_HEARD_THRESHOLD == 0.6
    ok, similarity = heard("book a table for two", "sure I will look a table for two")
    assert ok and similarity == pytest.approx(0.8)
    ok, similarity = heard("table for two", "i have a table for to tonight")
    assert ok and similarity == pytest.approx(2 / 3)
    ok, similarity = heard("what time do you open", "what time do owe them")   # pocketsphinx's words
    assert ok and similarity == pytest.approx(0.6)
    assert not heard("table for two", "i have a table for to tonight", threshold=0.9)[0]


def test_heard_rejects_unrelated_speech():
    ok, similarity = heard("book a table for two", "i would like to cancel my order for tomorrow")
    assert not ok and similarity <= 0.4
    ok, similarity = heard("cancel my order", "the weather is lovely today")
    assert not ok and similarity == 0.0


def test_heard_ignores_punctuation_and_case():
    assert heard("Table for TWO!", "...a table, for two.") == (True, 1.0)
    assert heard("open at 9", "We're open at nine") == (True, 1.0)
    ok, similarity = heard("we're open at 9", "We are open at nine")   # "we're" is one word
    assert ok and similarity == pytest.approx(0.75)


def test_heard_windows_around_the_phrase_length():
    # a transcript shorter than the phrase: compared whole (two words missing of five)
    assert heard("a table for two people", "table for two") == (True, pytest.approx(0.6))
    # "book a very nice table for two" is too long a stretch (seven words for five), but
    # "nice table for two" is near enough (one word changed, one missing)
    assert heard("book a table for two", "book a very nice table for two") == (True, pytest.approx(0.6))
    assert heard("table for two", "two for table") == (False, pytest.approx(1 / 3))   # not the order


def test_heard_empty_cases():
    assert heard("table for two", "") == (False, 0.0)
    assert heard("table for two", " ...  ") == (False, 0.0)
    assert heard("", "table for two") == (False, 0.0)
    assert heard("?!", "") == (False, 0.0)
    assert heard("yes", "yes") == (True, 1.0)
    assert heard("yes", "no") == (False, 0.0)


def test_heard_on_a_long_transcript_is_quick():
    import time

    transcript = " ".join(["hello there how can i help you today"] * 500) + " book a table for two"
    started = time.perf_counter()
    assert heard("book a table for two", transcript) == (True, 1.0)
    assert time.perf_counter() - started < 1.0
