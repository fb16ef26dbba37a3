"""scripts/browser-deps.sh (make browser-deps, run by make test): a missing Chromium is installed with
apt-get as root (or password-less sudo); otherwise the script stops and prints the one command to run.
apt-get and sudo are stand-ins on PATH here: nothing is installed on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/browser-deps.sh"


def fake_tools(bin_dir: Path, chromium: Path, calls: Path, sudo_ok: bool) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "apt-get").write_text(
        f'#!/bin/sh\necho "apt-get $*" >> {calls}\n'
        f'case "$*" in *install*) printf "#!/bin/sh\\n" > {chromium}; chmod +x {chromium};; esac\n')
    (bin_dir / "sudo").write_text(f'#!/bin/sh\necho "sudo $*" >> {calls}\n'
                                  + ('[ "$2" = true ] && exit 0\nshift; exec "$@"\n' if sudo_ok else "exit 1\n"))
    for tool in ("apt-get", "sudo"):
        (bin_dir / tool).chmod(0o755)
    os.chmod(bin_dir, 0o755)


def run(tmp_path: Path, *, as_user: str | None, sudo_ok: bool = False) -> tuple[subprocess.CompletedProcess[str], str]:
    if as_user is not None:  # pytest's own tmp dirs are private to root: the other user needs its own
        tmp_path = Path(tempfile.mkdtemp(prefix="browser-deps-"))
    tmp_path.chmod(0o777)
    chromium, calls = tmp_path / "chromium", tmp_path / "calls.log"
    calls.touch()
    calls.chmod(0o666)
    fake_tools(tmp_path / "bin", chromium, calls, sudo_ok)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "DEBIAN_CHROMIUM": str(chromium)}
    command = ["bash", str(SCRIPT)]
    if as_user is not None:
        command = [shutil.which("runuser") or "runuser", "-u", as_user, "--", "env", *(f"{k}={v}" for k, v in env.items()), *command]
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        return result, calls.read_text() + ("CHROMIUM-INSTALLED" if chromium.exists() else "")
    finally:
        if as_user is not None:
            shutil.rmtree(tmp_path, ignore_errors=True)


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"),
                                reason="switching users needs root (CI runs as root)")


def test_present_chromium_installs_nothing(tmp_path: Path) -> None:
    (tmp_path / "chromium").write_text("#!/bin/sh\n")
    (tmp_path / "chromium").chmod(0o755)
    result, calls = run(tmp_path, as_user=None)
    assert result.returncode == 0 and calls == "CHROMIUM-INSTALLED"  # it was there; apt-get never ran


@needs_root
def test_root_installs_chromium_and_the_emoji_font_with_apt(tmp_path: Path) -> None:
    result, calls = run(tmp_path, as_user=None)
    assert result.returncode == 0, result.stderr
    assert "apt-get update -qq" in calls
    assert "apt-get install -y -qq --no-install-recommends chromium fonts-noto-color-emoji" in calls
    assert calls.endswith("CHROMIUM-INSTALLED")


@needs_root
def test_a_user_with_password_less_sudo_installs_through_it(tmp_path: Path) -> None:
    result, calls = run(tmp_path, as_user="nobody", sudo_ok=True)
    assert result.returncode == 0, result.stderr
    assert "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install" in calls
    assert calls.endswith("CHROMIUM-INSTALLED")


@needs_root
def test_without_root_or_sudo_it_prints_the_command_and_fails(tmp_path: Path) -> None:
    result, calls = run(tmp_path, as_user="nobody", sudo_ok=False)
    assert result.returncode == 1
    assert "apt-get update && apt-get install -y --no-install-recommends chromium fonts-noto-color-emoji" \
        in result.stderr
    assert "sudo -n true" in calls and "apt-get" not in calls  # sudo was asked, nothing was installed


def test_a_wrong_chromium_path_is_named(tmp_path: Path) -> None:
    result = subprocess.run(["bash", str(SCRIPT)], env={"PATH": "/usr/bin:/bin", "CHROMIUM_PATH": str(tmp_path / "x")},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "CHROMIUM_PATH" in result.stderr
