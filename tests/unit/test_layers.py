"""The layering the design card asks for, checked on the source: services and domain rules import no
Telegram, HTTP or bot framework, and no adapter (roles, sandbox, the Telethon gateway)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# top-level packages (or dotted prefixes) a layer may not import
FORBIDDEN = {
    "domain": ("aiogram", "aiohttp", "telethon", "asyncpg", "redis", "roles", "sandbox", "storage", "services",
               "accounts"),
    "services": ("aiogram", "aiohttp", "telethon", "roles", "sandbox", "accounts.telethon",
                 "accounts.sandbox_gateway"),
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def offending(names: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_no_adapter(layer: str) -> None:
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no sources under {layer}/"
    found = {str(p.relative_to(ROOT)): bad for p in files if (bad := offending(imported(p), FORBIDDEN[layer]))}
    assert found == {}


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("import os\nfrom aiogram.types import Message\nimport telethon.errors\nfrom . import x\n")
    assert offending(imported(source), FORBIDDEN["services"]) == ["aiogram.types", "telethon.errors"]
