"""The control bot's two languages (U12): English msgids in the code, Russian in a gettext catalogue.

``roles/bot/locales/ru/LC_MESSAGES/bot.po`` is the only translation file; it is compiled to the
in-memory ``.mo`` form with Babel when the bot (or a test) first asks for a text, so a stale or
missing ``.mo`` can never be served. aiogram's ``I18n`` keeps the current locale in a context
variable: ``LocaleMiddleware`` sets it per update (the sender's stored language), background
senders (notifier, announcer) use ``use_locale`` per recipient.

How texts are written (docs/i18n.md has the workflow):
- a module constant of ``texts.py``: ``NAME = N_("English")``; ``texts.NAME`` is translated on
  every read, so call sites stay ``texts.NAME``;
- a text built at run time: ``_("Connected as {name}.").format(name=esc(name))``;
- a noun that agrees with a number: ``N_("group|groups")`` (Russian: three forms) and
  ``counted(n, FORMS)``, which goes through ``plural.py``.
"""

from __future__ import annotations

import gettext as stdlib_gettext
import io
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from aiogram.utils.i18n import I18n
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).with_name("locales")
DOMAIN = "bot"
DEFAULT = "en"
LANGUAGES = ("en", "ru")  # the order of the language menu
LANGUAGE_NAMES = {"en": "🇬🇧 English", "ru": "🇷🇺 Русский"}  # each in its own language, never translated


def from_telegram(language_code: str | None) -> str:
    """U12.1: Telegram's ``language_code`` (IETF tag) -> the bot's language: ru* is Russian, else English."""
    code = (language_code or "").strip().lower().replace("_", "-")
    return "ru" if code.split("-")[0] == "ru" else DEFAULT


def normalize(stored: str | None) -> str:
    """A stored ``users.language`` (older rows hold Telegram's raw code) -> a language the bot speaks."""
    return stored if stored in LANGUAGES else from_telegram(stored)


def po_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


class Catalogues(I18n):
    """aiogram's ``I18n`` fed from the ``.po`` files, compiled in memory by Babel at start-up."""

    def find_locales(self) -> dict[str, stdlib_gettext.GNUTranslations]:
        found: dict[str, stdlib_gettext.GNUTranslations] = {}
        for po in sorted(self.path.glob(f"*/LC_MESSAGES/{self.domain}.po")):
            language = po.parent.parent.name
            with po.open("rb") as fp:
                catalog = read_po(fp, locale=language)
            mo = io.BytesIO()
            write_mo(mo, catalog, use_fuzzy=False)
            mo.seek(0)
            found[language] = stdlib_gettext.GNUTranslations(mo)
        return found


_catalogues: Catalogues | None = None


def catalogues() -> Catalogues:
    """The process's one ``Catalogues`` (loaded on first use, also outside aiogram's context)."""
    global _catalogues
    if _catalogues is None:
        _catalogues = Catalogues(path=LOCALES_DIR, default_locale=DEFAULT, domain=DOMAIN)
    return _catalogues


def current() -> str:
    """The language of the text being built (the update's sender, or the notified user)."""
    return catalogues().current_locale


def use_locale(language: str | None) -> Any:
    """``with use_locale(lang):`` texts built inside speak ``lang`` (a stored or raw code is normalized)."""
    return catalogues().use_locale(normalize(language))


def set_locale(language: str | None) -> None:
    """Switch the current update's language (the middleware's ``use_locale`` resets it afterwards)."""
    catalogues().current_locale = normalize(language)


def _(msgid: str) -> str:
    """``msgid`` (English) in the current language."""
    return catalogues().gettext(msgid)


def translate(msgid: str, language: str) -> str:
    return catalogues().gettext(msgid, locale=language)


class Msg(str):
    """An English msgid that ``texts`` translates each time it is read."""

    __slots__ = ()


class MsgMap(dict[str, str]):
    """A table of msgids that ``texts`` hands out translated."""


def N_(msgid: str) -> str:
    """Mark a constant for the catalogue; it is translated when read (``texts.NAME``)."""
    return Msg(msgid)


def N_map(table: Mapping[str, str]) -> dict[str, str]:
    return MsgMap(table)


def translated(value: object) -> object:
    if type(value) is Msg:
        return _(value)
    if type(value) is MsgMap:
        return {key: _(text) for key, text in value.items()}
    return value


class TranslatedModule(ModuleType):
    """A module whose ``N_`` constants read translated: ``texts.BTN_MAIN`` is Russian for a Russian user."""

    def __getattribute__(self, name: str) -> Any:
        return translated(super().__getattribute__(name))


def translate_module(name: str) -> None:
    """Call at the end of a texts module: ``translate_module(__name__)``."""
    sys.modules[name].__class__ = TranslatedModule


# {name}, %s / %(name)s and HTML tags: what a translation must keep exactly as the English has it
_PLACEHOLDER = re.compile(r"\{[a-z_][a-z0-9_]*(?:[:!][^}]*)?\}|%\(?[a-z_]*\)?[sd]|</?[a-z-]+(?:\s[^>]*)?>")


def placeholders(text: str) -> list[str]:
    return sorted(_PLACEHOLDER.findall(text))
