"""Counts that agree in number: "1 group", "2 groups"; Russian has three forms.

One helper for every language the bot speaks: ``count(n, forms, lang)`` picks the form by the
CLDR plural rule of ``lang`` (English: one/other; Russian: one/few/many, "1 группа, 2 группы,
5 групп, 21 группа, 11 групп").
"""

from __future__ import annotations

from collections.abc import Sequence

from roles.bot.i18n import current


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


def plural(n: int, forms: Sequence[str] | str, lang: str | None = None) -> str:
    """The form of the noun that agrees with ``n`` (``forms`` in ``plural_index`` order, a sequence or
    one ``"a|b|c"`` string as the catalogue holds them). Without ``lang``: the language of the texts
    being built (U12), or English when ``forms`` has only English's two forms."""
    if isinstance(forms, str):
        forms = forms.split("|")
    if lang is None:
        lang = current()
        if lang == "ru" and len(forms) < 3:
            lang = "en"
    index = plural_index(n, lang)
    if index >= len(forms):
        raise ValueError(f"{lang} needs {index + 1} plural forms, got {list(forms)}")
    return forms[index]


def count(n: int, forms: Sequence[str] | str, lang: str | None = None) -> str:
    """``n`` and the noun that agrees with it: ``count(1, ("group", "groups"))`` -> ``"1 group"``;
    ``count(5, texts.GROUP_FORMS)`` -> ``"5 групп"`` for a Russian user."""
    return f"{n} {plural(n, forms, lang)}"
