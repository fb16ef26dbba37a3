"""The Russian pass of the contract: what an English phrase of flows.yaml means in Russian.

The contract's reply phrases are English fragments of the bot's texts. A phrase found inside one or
more English msgids means any of their Russian translations: the longest literal piece of each
translation (between placeholders and HTML tags) must show. A phrase no msgid holds (it spans a
value or a template such as ``{uid}``, or it is data such as a name) is listed in ``contract/ru_phrases.yaml``: its Russian words,
or ``"="`` when it reads the same in every language. ``lit:`` phrases, and phrases without a
word (an emoji, a number, ``{uid}``), are literal in every pass.
A phrase with no Russian meaning fails the case, so a new English phrase can't pass unchecked.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

from roles.bot.catalogue import load

PHRASES = Path(__file__).resolve().parents[2] / "contract" / "ru_phrases.yaml"
_LETTERS = re.compile(r"[^\W\d_]")
_TEMPLATE = re.compile(r"\{\w+\}")
_PIECES = re.compile(r"\{[^}]*\}|</?[a-z-]+(?:\s[^>]*)?>|\n")


def _longest_piece(translation: str) -> str:
    pieces = [p.strip(" ,.;:—-") for p in _PIECES.split(translation)]
    return max(pieces, key=len)


@functools.cache
def _catalogue() -> tuple[tuple[str, str], ...]:
    return tuple((str(m.id), str(m.string)) for m in load("ru") if m.id and m.string)


@functools.cache
def listed() -> dict[str, str | list[str]]:
    data = yaml.safe_load(PHRASES.read_text(encoding="utf-8")) or {}
    assert isinstance(data, dict), f"{PHRASES}: a mapping of English phrase -> Russian"
    return data


class NoMeaning(AssertionError):
    pass


def meanings(phrase: str) -> list[str]:
    """The Russian phrases (any of which) that show what the English ``phrase`` means."""
    if phrase.startswith("lit:") or not _LETTERS.search(_TEMPLATE.sub("", phrase)):
        return [phrase]  # literal, or no words at all (an emoji, a number, {uid})
    table = listed()
    if phrase in table:
        value = table[phrase]
        if value == "=":
            return [phrase]
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if not phrase.startswith("re:") and "{" not in phrase:  # a template's value is in no msgid
        wanted = phrase.lower()
        found = [_longest_piece(ru) for en, ru in _catalogue() if wanted in en.lower()]
        found = [piece for piece in found if piece]
        if found:
            return list(dict.fromkeys(found))
    raise NoMeaning(f"no Russian meaning for the phrase {phrase!r}: it is in no msgid of the catalogue; "
                    f"add it to {PHRASES.name}")
