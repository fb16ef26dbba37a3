"""Counts that agree in number: "1 group", "2 groups"; Russian has three forms.

One helper for every language the bot speaks: ``count(n, forms, lang)`` picks the form by the
CLDR plural rule of ``lang`` (English: one/other; Russian: one/few/many, "1 группа, 2 группы,
5 групп, 21 группа, 11 групп").
"""

from __future__ import annotations

from collections.abc import Sequence


def plural_index(n: int, lang: str = "en") -> int:
    """The index of the form ``n`` takes in ``lang``'s forms (one, other) or (one, few, many)."""
    n = abs(n)
    if lang == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return 0
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return 1
        return 2
    return 0 if n == 1 else 1


def plural(n: int, forms: Sequence[str], lang: str = "en") -> str:
    """The form of the noun that agrees with ``n`` (``forms`` in ``plural_index`` order)."""
    index = plural_index(n, lang)
    if index >= len(forms):
        raise ValueError(f"{lang} needs {index + 1} plural forms, got {list(forms)}")
    return forms[index]


def count(n: int, forms: Sequence[str], lang: str = "en") -> str:
    """``n`` and the noun that agrees with it: ``count(1, ("group", "groups"))`` -> ``"1 group"``."""
    return f"{n} {plural(n, forms, lang)}"
