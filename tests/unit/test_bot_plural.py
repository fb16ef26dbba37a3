"""Counts agree in number in English and in Russian's three forms."""

from __future__ import annotations

import pytest

from roles.bot import texts
from roles.bot.plural import count, plural

GROUPS_RU = ("группа", "группы", "групп")


@pytest.mark.parametrize(("n", "expected"), [(0, "0 groups"), (1, "1 group"), (2, "2 groups"), (11, "11 groups"),
                                             (21, "21 groups")])
def test_english_has_one_and_other(n: int, expected: str) -> None:
    assert count(n, ("group", "groups")) == expected


@pytest.mark.parametrize(("n", "expected"), [(1, "группа"), (21, "группа"), (101, "группа"), (2, "группы"),
                                             (4, "группы"), (22, "группы"), (5, "групп"), (11, "групп"),
                                             (12, "групп"), (14, "групп"), (0, "групп"), (111, "групп")])
def test_russian_has_one_few_and_many(n: int, expected: str) -> None:
    assert plural(n, GROUPS_RU, "ru") == expected


def test_too_few_forms_for_russian_is_an_error() -> None:
    with pytest.raises(ValueError):
        plural(5, ("группа", "группы"), "ru")


def test_texts_agree_in_number() -> None:
    assert "1 attempt left" in texts.wrong_code(1) and "2 attempts left" in texts.wrong_code(2)
    assert "Started: 1 group every" in texts.started(1, "1 h", None, None)
    assert "3 groups" in texts.started(3, "1 h", None, None)
    assert "at most 1 group." in texts.limit_reached(1)
