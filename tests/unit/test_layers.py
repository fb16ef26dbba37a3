"""The layering the design card asks for, checked on the source: no import from a lower layer to a
higher one. From the bottom: domain (rules, models, errors) -> storage (repositories, queue, leases)
-> accounts (the gateway adapters) -> services -> scheduler -> roles -> the supervisor (app.py).
Services and domain import no Telegram, HTTP, bot framework, database or Redis client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ("aiogram", "aiohttp", "telethon", "asyncpg", "redis")
# top-level packages (or dotted prefixes) a layer may not import
FORBIDDEN = {
    "domain": (*CLIENTS, "roles", "sandbox", "storage", "services", "accounts", "scheduler", "app"),
    "storage": ("aiogram", "aiohttp", "telethon", "roles", "sandbox", "services", "accounts", "scheduler",
                "app"),
    "services": (*CLIENTS, "roles", "sandbox", "scheduler", "app", "accounts.telethon",
                 "accounts.sandbox_gateway"),
    "scheduler": ("aiogram", "aiohttp", "telethon", "roles", "sandbox", "app"),
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
    source.write_text("import os\nfrom aiogram.types import Message\nimport telethon.errors\nfrom . import x\n"
                      "import asyncpg\nfrom redis.asyncio import Redis\nfrom services.locks import Busy\n")
    assert offending(imported(source), FORBIDDEN["services"]) == [
        "aiogram.types", "asyncpg", "redis.asyncio", "telethon.errors"]
    assert offending(imported(source), FORBIDDEN["storage"]) == [
        "aiogram.types", "services.locks", "telethon.errors"]
