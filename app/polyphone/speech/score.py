"""Scoring a transcript: word error rate, and whether an expected phrase was heard. Pure functions.

Both compare normalised words: lower case, accents kept, punctuation gone ("Table-for-two!" is
"table for two", "don't" is "dont"), and whole numbers up to 999999 spelled out ("2" is "two",
"7:30" is "seven thirty"), since one recogniser writes digits where another writes words.
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_HEARD_THRESHOLD = 0.6
WINDOW_SLACK = 2   # words more or fewer than the phrase a matching stretch of transcript may have

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_APOSTROPHES = "'\u2019\u02bc`\u00b4"
_TOKEN = re.compile(r"[^\W_]+")


def _number_words(n: int) -> list[str]:
    """0 <= n < 1_000_000 in words, without "and": 2024 -> two thousand twenty four."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (_number_words(n % 100) if n % 100 else [])
    return _number_words(n // 1000) + ["thousand"] + (_number_words(n % 1000) if n % 1000 else [])


def normalise(text: str) -> list[str]:
    """The words of `text` as scoring compares them (see the module's docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    for mark in _APOSTROPHES:
        text = text.replace(mark, "")
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if token.isdecimal() and len(token) <= 6:
            words.extend(_number_words(int(token)))
        else:
            words.append(token)
    return words


def _distances(reference: list[str], hypothesis: list[str]) -> list[int]:
    """Word edit distance of `reference` to each prefix of `hypothesis` (index = prefix length)."""
    row = list(range(len(hypothesis) + 1))   # the empty reference against each prefix
    for i, word in enumerate(reference, 1):
        previous, row = row, [i]
        for j, heard in enumerate(hypothesis, 1):
            row.append(min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (word != heard)))
    return row


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: (substitutions + deletions + insertions) / words in `reference`.

    0.0 is a perfect transcript; it can exceed 1.0 when words were added. With an empty
    reference it is 0.0 for an empty hypothesis and 1.0 otherwise.
    """
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return _distances(ref, hyp)[-1] / len(ref)


def heard(expected_phrase: str, transcript: str,
          threshold: float = DEFAULT_HEARD_THRESHOLD) -> tuple[bool, float]:
    """Whether `expected_phrase` was said somewhere in `transcript`: (passed, similarity).

    The rule behind a script's `expect = { heard = "table for two" }`. Both are normalised; every
    stretch of the transcript from 2 words shorter to 2 words longer than the phrase is compared
    with it, and the best one's similarity, 1 - WER of the phrase against that stretch (at least
    0), must reach `threshold`.

    Why a similarity and not the exact words: an offline recogniser gets some words wrong
    (pocketsphinx misses about one word in four on synthetic speech), and the agent may
    add or drop a little word. Why 0.6: for the usual 3-6 word phrase it forgives one or two
    wrong words ("table for two" matches "a table for to"), while unrelated speech stays far
    below it (sharing a stray "a" or "for" scores 0.2-0.4). A phrase of one or two words must
    be heard exactly. Raise the threshold for a better recogniser.

    A phrase with no words ("", "?!") and an empty transcript never pass: (False, 0.0).
    """
    phrase, words = normalise(expected_phrase), normalise(transcript)
    if not phrase:
        return False, 0.0
    similarity = max(0.0, 1.0 - _best_window(phrase, words) / len(phrase))
    return similarity >= threshold - 1e-9, similarity   # 1 - 2/5 is 0.6, whatever the rounding


def _best_window(phrase: list[str], words: list[str]) -> int:
    """The fewest edits from `phrase` to a stretch of `words` of its length +- WINDOW_SLACK."""
    shortest, longest = max(1, len(phrase) - WINDOW_SLACK), len(phrase) + WINDOW_SLACK
    if len(words) <= shortest:
        return _distances(phrase, words)[-1]
    # one table per start: its last row holds every window length from that start at once
    return min(min(_distances(phrase, words[start:start + longest])[shortest:])
               for start in range(len(words) - shortest + 1))
