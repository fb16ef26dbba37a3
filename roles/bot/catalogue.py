"""The msgids of the control bot's code and the Russian catalogue, kept in step (U12, docs/i18n.md).

``python -m roles.bot.catalogue extract`` rewrites ``locales/ru/LC_MESSAGES/bot.po`` from the code:
new msgids are added untranslated, unused ones dropped, translations kept. ``check`` lists what is
wrong (the unit test ``tests/unit/test_bot_i18n.py`` fails on the same list).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from roles.bot.i18n import placeholders, po_path

ROOT = Path(__file__).resolve().parent  # roles/bot
MARKERS = frozenset({"_", "N_"})


@dataclass(frozen=True)
class Use:
    msgid: str
    where: str  # path:line


def uses(root: Path = ROOT) -> tuple[list[Use], list[str]]:
    """Every ``_("...")`` / ``N_("...")`` under ``root``, and the calls whose argument isn't one literal
    (an f-string or a variable in ``_()`` can't be extracted: the catalogue would never see it)."""
    found: list[Use] = []
    bad: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if node.func.id not in MARKERS:
                continue
            where = f"{path.relative_to(root.parent.parent)}:{node.lineno}"
            arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append(Use(arg.value, where))
            elif node.func.id == "N_" or isinstance(arg, ast.JoinedStr):
                bad.append(f"{where}: {node.func.id}() needs one string literal")
    return found, bad


def load(language: str = "ru") -> Catalog:
    with po_path(language).open("rb") as fp:
        return read_po(fp, locale=language)


def problems(language: str = "ru", catalog: Catalog | None = None,
             found: list[Use] | None = None) -> list[str]:
    """Missing, unused and mismatched entries of ``language``'s catalogue, one line each (the code's
    uses and the stored catalogue unless given)."""
    out: list[str] = []
    if found is None:
        found, out = uses()
    catalog = load(language) if catalog is None else catalog
    used = {u.msgid for u in found}
    for use in found:
        message = catalog.get(use.msgid)
        if message is None or not message.string or message.fuzzy:
            out.append(f"missing: {use.where}: {use.msgid!r} has no {language} translation")
    for message in catalog:
        if message.id and message.id not in used:
            out.append(f"unused: {message.id!r} is in {language}/bot.po but no code uses it")
    for message in catalog:
        if not message.id or not message.string or message.id not in used:
            continue
        msgid, text = str(message.id), str(message.string)
        if placeholders(msgid) != placeholders(text):
            out.append(f"placeholders: {msgid!r}: {placeholders(msgid)} vs {language} {placeholders(text)}")
        if "|" in msgid and text.count("|") != (2 if language == "ru" else msgid.count("|")):
            out.append(f"plural forms: {msgid!r} needs one|few|many in {language}, got {text!r}")
    return list(dict.fromkeys(out))


def extract(language: str = "ru") -> int:
    """Rewrite the catalogue from the code; returns how many msgids still need a translation."""
    found, bad = uses()
    for line in bad:
        print(line, file=sys.stderr)
    old = load(language)
    # a stable file: msgids sorted, file names without line numbers, the header's date kept, so two
    # branches that each add strings touch different lines (docs/i18n.md)
    new = Catalog(locale=language, project="autobroadcast control bot", fuzzy=False,
                  creation_date=old.creation_date, revision_date=old.revision_date)
    for use in found:
        known = old.get(use.msgid)
        path = use.where.split(":")[0]
        if use.msgid in new:
            if (path, 0) not in new[use.msgid].locations:
                new[use.msgid].locations.append((path, 0))
            continue
        new.add(use.msgid, known.string if known is not None else "", locations=[(path, 0)])
    with po_path(language).open("wb") as fp:
        write_po(fp, new, width=100, sort_output=True, include_lineno=False, include_previous=False)
    return sum(1 for m in new if m.id and not m.string)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "extract":
        todo = extract()
        print(f"{po_path('ru')}: {todo} msgid(s) to translate")
    else:
        issues = problems()
        print("\n".join(issues) or "catalogue ok")
        sys.exit(1 if issues else 0)
