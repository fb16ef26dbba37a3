"""compose.yaml, Dockerfile, .dockerignore and .env.example agree with each other and with the code.

Docker cannot run here, so the files are read as data and checked by the functions below; the
negative tests feed broken inputs to the same functions.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import ENV_MAP, ROLES

ROOT = Path(__file__).resolve().parents[2]
OUR_IMAGE = "${IMAGE:-autobroadcast}:${TAG:-latest}"
DEPLOYED_ROLES = frozenset(ROLES) - {"sandbox"}
MIN_GRACE_SECONDS = 30.0

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}


# ---------------------------------------------------------------- readers


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    pairs = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def exec_form(arguments: str) -> list[str]:
    """An ENTRYPOINT/CMD argument list: JSON exec form, or shell form run through /bin/sh -c."""
    if arguments.startswith("["):
        value = json.loads(arguments)
        assert isinstance(value, list) and all(isinstance(item, str) for item in value)
        return value
    return ["/bin/sh", "-c", arguments]


def dockerfile_last(text: str, keyword: str) -> str | None:
    found = [rest for name, rest in dockerfile_instructions(text) if name == keyword]
    return found[-1] if found else None


def env_example_variables(text: str) -> dict[str, str]:
    """Variable -> its comment line. A variable without a comment right above it maps to ''."""
    documented: dict[str, str] = {}
    previous = ""
    for raw in text.splitlines():
        line = raw.strip()
        match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=", line)
        if match:
            comment = previous[1:].strip() if previous.startswith("#") else ""
            documented[match.group(1)] = comment
        previous = line
    return documented


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


def compose_variables(compose: Mapping[str, Any]) -> set[str]:
    """Every variable compose interpolates (``$$`` is a literal dollar, not a variable)."""
    names: set[str] = set()
    for text in strings_in(compose):
        for match in _VARIABLE.finditer(text.replace("$$", "")):
            names.add(match.group(1) or match.group(2))
    return names


def duration_seconds(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a compose duration: {value!r}")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def as_argv(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [str(item) for item in value]


def as_env(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(key): "" if item is None else str(item) for key, item in value.items()}
    env = {}
    for item in value:
        key, _, item_value = str(item).partition("=")
        env[key] = item_value
    return env


def as_depends(value: Any) -> dict[str, str]:
    """depends_on as service -> condition (the short list form means service_started)."""
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(name): "service_started" for name in value}
    return {str(name): str((spec or {}).get("condition", "service_started")) for name, spec in value.items()}


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [item if isinstance(item, str) else str(item.get("path")) for item in value]


# ---------------------------------------------------------------- checkers


def python_c_problems(where: str, argv: list[str]) -> list[str]:
    """A ``python -c CODE`` probe must at least compile (no curl in the image, so it is all we have)."""
    if argv[:2] != ["python", "-c"] or len(argv) != 3:
        return [f"{where}: expected python -c CODE, got {argv}"]
    try:
        compile(argv[2], where, "exec")
    except SyntaxError as exc:
        return [f"{where}: {exc.msg}"]
    return []


def dockerfile_problems(text: str) -> list[str]:
    problems = []
    entrypoint = dockerfile_last(text, "ENTRYPOINT")
    if entrypoint is None:
        problems.append("Dockerfile has no ENTRYPOINT")
    elif exec_form(entrypoint) != ["python", "app.py"]:
        problems.append(f"Dockerfile ENTRYPOINT must be exec form python app.py, got {entrypoint}")
    base = dockerfile_last(text, "FROM") or ""
    if not base.startswith("python:3.11-slim"):
        problems.append(f"Dockerfile must build FROM python:3.11-slim, got {base!r}")
    user = (dockerfile_last(text, "USER") or "root").split(":")[0]
    if user in {"root", "0"}:
        problems.append("Dockerfile must switch to a non-root USER")
    exposed = set((dockerfile_last(text, "EXPOSE") or "").split())
    if not {"8080", "9100"} <= exposed:
        problems.append(f"Dockerfile must EXPOSE 8080 and 9100, got {sorted(exposed)}")
    healthcheck = dockerfile_last(text, "HEALTHCHECK") or ""
    if "CMD" not in healthcheck or "/healthz" not in healthcheck:
        problems.append("Dockerfile HEALTHCHECK must probe /healthz on the metrics port")
    else:
        problems.extend(python_c_problems("Dockerfile HEALTHCHECK", exec_form(healthcheck.split("CMD", 1)[1].strip())))
    env = " ".join(rest for name, rest in dockerfile_instructions(text) if name == "ENV")
    if not re.search(r"\bROLE=", env):
        problems.append("Dockerfile must set a default ROLE with ENV")
    for name, rest in dockerfile_instructions(text):
        if name == "RUN" and re.search(r"pip install[^&;]*\[dev\]", rest):
            problems.append("Dockerfile must not install the dev extras")
    return problems


def compose_problems(compose: Mapping[str, Any], dockerfile_text: str) -> list[str]:
    """Everything wrong with how compose starts our image; empty when the deployment is coherent."""
    problems: list[str] = []
    services: Mapping[str, Any] = compose.get("services") or {}
    entrypoint_args = dockerfile_last(dockerfile_text, "ENTRYPOINT")
    cmd_args = dockerfile_last(dockerfile_text, "CMD")
    image_entrypoint = exec_form(entrypoint_args) if entrypoint_args else []
    image_cmd = exec_form(cmd_args) if cmd_args else []

    ours = {name: spec for name, spec in services.items() if spec.get("image") == OUR_IMAGE or "build" in spec}
    migrate_services: list[str] = []
    roles_seen: set[str] = set()
    for name, spec in ours.items():
        if spec.get("image") != OUR_IMAGE:
            problems.append(f"{name}: image must be {OUR_IMAGE} (rollback is a TAG change), not a build")
        entrypoint = as_argv(spec.get("entrypoint"))
        command = as_argv(spec.get("command"))
        argv = (image_entrypoint if entrypoint is None else entrypoint) + (image_cmd if command is None else command)
        env = as_env(spec.get("environment"))
        if argv[:2] != ["python", "app.py"]:
            problems.append(f"{name}: runs {argv}, not python app.py")
        elif argv[2:] == ["migrate"]:
            migrate_services.append(name)
        elif argv[2:]:
            problems.append(f"{name}: unknown app.py arguments {argv[2:]}")
        elif env.get("ROLE") not in DEPLOYED_ROLES:
            problems.append(f"{name}: ROLE {env.get('ROLE')!r} is not one of {sorted(DEPLOYED_ROLES)}")
        else:
            roles_seen.add(env["ROLE"])
        problems.extend(_runtime_problems(name, spec, env, is_migrate=argv[2:] == ["migrate"]))

    if len(migrate_services) != 1:
        problems.append(f"exactly one migrate service is needed, found {migrate_services}")
    for role in ("bot", "app", "worker"):
        if role not in roles_seen:
            problems.append(f"no service runs ROLE={role}")
    for name in migrate_services:
        spec = ours[name]
        if str(spec.get("restart", "no")) != "no":
            problems.append(f"{name}: a one-shot migration must have restart 'no'")
        if as_depends(spec.get("depends_on")).get("postgres") != "service_healthy":
            problems.append(f"{name}: must wait for postgres to be healthy")
        for other, other_spec in ours.items():
            if other == name:
                continue
            if as_depends(other_spec.get("depends_on")).get(name) != "service_completed_successfully":
                problems.append(f"{other}: must depend on {name} completing successfully")
    problems.extend(_backing_service_problems(services))
    worker = next((spec for spec in ours.values() if as_env(spec.get("environment")).get("ROLE") == "worker"), None)
    if worker is not None and "WORKER_REPLICAS" not in compose_variables(worker.get("deploy") or {}):
        problems.append("worker: deploy.replicas must come from WORKER_REPLICAS")
    return problems


def _runtime_problems(name: str, spec: Mapping[str, Any], env: Mapping[str, str], *, is_migrate: bool) -> list[str]:
    problems = []
    if ".env" not in as_list(spec.get("env_file")):
        problems.append(f"{name}: env_file must include .env")
    if "@postgres:" not in env.get("DATABASE_URL", ""):
        problems.append(f"{name}: DATABASE_URL must point at the postgres service")
    if not env.get("REDIS_URL", "").startswith("redis://redis:"):
        problems.append(f"{name}: REDIS_URL must point at the redis service")
    if env.get("PRODUCTION") != "1":
        problems.append(f"{name}: PRODUCTION must be 1")
    if is_migrate:
        return problems
    if spec.get("restart") != "unless-stopped":
        problems.append(f"{name}: restart must be unless-stopped")
    health = spec.get("healthcheck") or {}
    test = as_argv(health.get("test")) or []
    if not test or health.get("disable"):
        problems.append(f"{name}: needs a healthcheck")
    elif test[0] == "CMD":
        problems.extend(python_c_problems(f"{name} healthcheck", test[1:]))
    try:
        grace = duration_seconds(spec.get("stop_grace_period", "10s"))
    except ValueError as exc:
        problems.append(f"{name}: {exc}")
    else:
        if grace < MIN_GRACE_SECONDS:
            problems.append(f"{name}: stop_grace_period {grace}s leaves in-flight sends no time")
    return problems


def _backing_service_problems(services: Mapping[str, Any]) -> list[str]:
    problems = []
    postgres = services.get("postgres") or {}
    if not str(postgres.get("image", "")).startswith("postgres:18"):
        problems.append("postgres: must run the postgres:18 image")
    if "pg_isready" not in " ".join(as_argv((postgres.get("healthcheck") or {}).get("test")) or []):
        problems.append("postgres: healthcheck must use pg_isready")
    if not postgres.get("volumes"):
        problems.append("postgres: needs a volume")
    redis = services.get("redis") or {}
    if not str(redis.get("image", "")).startswith("redis:7"):
        problems.append("redis: must run the redis:7 image")
    if "--appendonly" not in (as_argv(redis.get("command")) or []):
        problems.append("redis: must run with --appendonly")
    if "ping" not in (as_argv((redis.get("healthcheck") or {}).get("test")) or []):
        problems.append("redis: healthcheck must use redis-cli ping")
    if not redis.get("volumes"):
        problems.append("redis: needs a volume")
    for name in ("prometheus", "grafana"):
        if "monitoring" not in ((services.get(name) or {}).get("profiles") or []):
            problems.append(f"{name}: must exist under the monitoring profile")
    return problems


def env_example_problems(text: str, compose: Mapping[str, Any]) -> list[str]:
    documented = env_example_variables(text)
    problems = [f"{name}: no comment line above it in .env.example" for name, comment in documented.items()
                if not comment]
    for name in sorted(set(ENV_MAP) - set(documented)):
        problems.append(f"{name}: settings variable not documented in .env.example")
    for name in sorted(compose_variables(compose) - set(documented)):
        problems.append(f"{name}: compose variable not documented in .env.example")
    for name in sorted(set(documented) - set(ENV_MAP) - compose_variables(compose)):
        problems.append(f"{name}: documented in .env.example but used by neither settings nor compose")
    return problems


# ---------------------------------------------------------------- the real files


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def env_example() -> str:
    return (ROOT / ".env.example").read_text(encoding="utf-8")


def test_dockerfile_is_coherent(dockerfile: str) -> None:
    assert dockerfile_problems(dockerfile) == []


def test_compose_is_coherent(compose: dict[str, Any], dockerfile: str) -> None:
    assert compose_problems(compose, dockerfile) == []


def test_env_example_documents_every_variable(env_example: str, compose: dict[str, Any]) -> None:
    assert env_example_problems(env_example, compose) == []


def test_compose_reads_the_variables_the_brief_names(compose: dict[str, Any]) -> None:
    assert {"IMAGE", "TAG", "WORKER_REPLICAS", "POSTGRES_PASSWORD"} <= compose_variables(compose)


def test_env_example_keeps_secrets_empty(env_example: str) -> None:
    values = dict(line.split("=", 1) for line in env_example.splitlines() if re.match(r"[A-Z_]+=", line))
    for name in ("SESSION_ENCRYPTION_KEY", "BOT_TOKEN", "TELEGRAM_API_HASH", "WEBHOOK_SECRET",
                 "ADMIN_API_TOKENS", "POSTGRES_PASSWORD", "DATABASE_URL", "REDIS_URL"):
        assert values[name] == "", name


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    entries = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", "data", ".git", ".env"} <= entries


def test_grafana_dashboard_is_mounted_where_provisioning_looks(compose: dict[str, Any]) -> None:
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/autobroadcast.yaml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    mounts = [str(volume).split(":") for volume in compose["services"]["grafana"]["volumes"]]
    sources = {source: target for source, target, *_ in mounts}
    assert Path(sources["./deploy/grafana/dashboard.json"]).parent == Path(folder)
    assert sources["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert (ROOT / "deploy/grafana/dashboard.json").is_file()
    prometheus_mounts = [str(v).split(":")[0] for v in compose["services"]["prometheus"]["volumes"]]
    assert "./deploy/prometheus.yml" in prometheus_mounts


# ---------------------------------------------------------------- the checkers catch broken files


def _break(compose: dict[str, Any]) -> dict[str, Any]:
    # A JSON round trip, not deepcopy: YAML anchors share nested mappings between services.
    copied = json.loads(json.dumps(compose))
    assert isinstance(copied, dict)
    return copied


def test_checker_rejects_a_sandbox_role(compose: dict[str, Any], dockerfile: str) -> None:
    broken = _break(compose)
    broken["services"]["bot"]["environment"]["ROLE"] = "sandbox"
    problems = compose_problems(broken, dockerfile)
    assert any(p.startswith("bot: ROLE 'sandbox'") for p in problems)
    assert "no service runs ROLE=bot" in problems


def test_checker_rejects_a_missing_role(compose: dict[str, Any], dockerfile: str) -> None:
    broken = _break(compose)
    del broken["services"]["worker"]["environment"]["ROLE"]
    assert any(p.startswith("worker: ROLE None") for p in compose_problems(broken, dockerfile))


def test_checker_rejects_a_command_that_bypasses_app_py(compose: dict[str, Any], dockerfile: str) -> None:
    broken = _break(compose)
    broken["services"]["app"]["entrypoint"] = ["python", "-m", "http.server"]
    assert any(p.startswith("app: runs") for p in compose_problems(broken, dockerfile))
    broken = _break(compose)
    broken["services"]["worker"]["command"] = "serve --fast"
    assert any(p.startswith("worker: unknown app.py arguments") for p in compose_problems(broken, dockerfile))


def test_checker_requires_the_migrate_service(compose: dict[str, Any], dockerfile: str) -> None:
    broken = _break(compose)
    del broken["services"]["migrate"]
    assert "exactly one migrate service is needed, found []" in compose_problems(broken, dockerfile)


def test_checker_requires_services_to_wait_for_migrate(compose: dict[str, Any], dockerfile: str) -> None:
    broken = _break(compose)
    broken["services"]["worker"]["depends_on"] = ["postgres", "redis"]
    assert "worker: must depend on migrate completing successfully" in compose_problems(broken, dockerfile)
    broken = _break(compose)
    broken["services"]["bot"]["depends_on"]["migrate"] = {"condition": "service_started"}
    assert "bot: must depend on migrate completing successfully" in compose_problems(broken, dockerfile)


def test_checker_rejects_runtime_mistakes(compose: dict[str, Any], dockerfile: str) -> None:
    broken = _break(compose)
    broken["services"]["worker"]["stop_grace_period"] = "5s"
    broken["services"]["bot"]["environment"]["DATABASE_URL"] = ""
    broken["services"]["app"]["restart"] = "always"
    broken["services"]["migrate"]["restart"] = "on-failure"
    broken["services"]["redis"]["command"] = ["redis-server"]
    broken["services"]["bot"]["healthcheck"] = {"test": ["CMD", "python", "-c", "import urllib.request;("]}
    problems = compose_problems(broken, dockerfile)
    assert "worker: stop_grace_period 5.0s leaves in-flight sends no time" in problems
    assert "bot: DATABASE_URL must point at the postgres service" in problems
    assert "app: restart must be unless-stopped" in problems
    assert "migrate: a one-shot migration must have restart 'no'" in problems
    assert "redis: must run with --appendonly" in problems
    assert "bot healthcheck: '(' was never closed" in problems


def test_checker_rejects_a_build_instead_of_the_tagged_image(compose: dict[str, Any], dockerfile: str) -> None:
    broken = _break(compose)
    broken["services"]["app"]["image"] = "autobroadcast:latest"
    broken["services"]["app"]["build"] = "."
    problems = compose_problems(broken, dockerfile)
    assert any(p.startswith("app: image must be") for p in problems)
    broken = _break(compose)
    broken["services"]["app"]["image"] = "someone-else/app:1"
    assert "no service runs ROLE=app" in compose_problems(broken, dockerfile)


def test_checker_follows_the_dockerfile_entrypoint(compose: dict[str, Any]) -> None:
    other = 'FROM python:3.11-slim\nUSER app\nENTRYPOINT ["python", "main.py"]\n'
    problems = compose_problems(compose, other)
    assert any(p.startswith("bot: runs ['python', 'main.py']") for p in problems)
    assert any("ENTRYPOINT must be exec form python app.py" in p for p in dockerfile_problems(other))


def test_dockerfile_checker_rejects_root_and_dev_extras() -> None:
    text = (
        "FROM python:3.11-slim\n"
        "RUN pip install -e '.[dev]' \\\n && echo done\n"
        "EXPOSE 8080\n"
        'ENTRYPOINT ["python", "app.py"]\n'
    )
    problems = dockerfile_problems(text)
    assert "Dockerfile must switch to a non-root USER" in problems
    assert "Dockerfile must not install the dev extras" in problems
    assert "Dockerfile must EXPOSE 8080 and 9100, got ['8080']" in problems
    assert "Dockerfile HEALTHCHECK must probe /healthz on the metrics port" in problems
    assert "Dockerfile must set a default ROLE with ENV" in problems


def test_env_example_checker_catches_undocumented_variables(compose: dict[str, Any], env_example: str) -> None:
    broken = _break(compose)
    broken["services"]["worker"]["environment"]["EXTRA"] = "${UNDOCUMENTED_KNOB:-3}"
    broken["services"]["worker"]["labels"] = ["cost=$$NOT_A_VARIABLE"]
    missing_setting = env_example.replace("\nLEASE_TTL=30\n", "\n")
    uncommented = env_example.replace("# Number of worker containers.\n", "")
    problems = env_example_problems(missing_setting, broken)
    assert "UNDOCUMENTED_KNOB: compose variable not documented in .env.example" in problems
    assert "LEASE_TTL: settings variable not documented in .env.example" in problems
    assert not any("NOT_A_VARIABLE" in p for p in problems)
    assert "WORKER_REPLICAS: no comment line above it in .env.example" in env_example_problems(uncommented, compose)
    stray = env_example + "# a knob nobody reads\nSTRAY_KNOB=1\n"
    assert "STRAY_KNOB: documented in .env.example but used by neither settings nor compose" in (
        env_example_problems(stray, compose)
    )


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("1m30s", 90.0), ("2m", 120.0), (45, 45.0)])
def test_duration_parser(text: str | int, seconds: float) -> None:
    assert duration_seconds(text) == seconds


def test_duration_parser_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        duration_seconds("soon")


def test_the_admin_port_is_published_on_loopback_only_by_default(compose: dict[str, Any]) -> None:
    ports = compose["services"]["app"]["ports"]
    assert ports == ["${APP_PUBLISHED_ADDRESS:-127.0.0.1}:${APP_PUBLISHED_PORT:-8080}:8080"]
    for name, spec in compose["services"].items():
        for port in spec.get("ports", []):
            assert str(port).startswith(("127.0.0.1:", "${APP_PUBLISHED_ADDRESS:-127.0.0.1}:")), (name, port)
