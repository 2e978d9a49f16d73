"""Kafka Connect with Debezium's Postgres connector: the local stack's change-data-capture service.

Optional, like monitoring: ``livectx stack up --with cdc`` (or ``stack up connect``, or
``LIVECTX_STACK_CDC=1``). A **distributed** worker (its configs, offsets and statuses on three compacted
topics of the stack's broker, so a restarted worker resumes from stored offsets and never snapshots a table
again), bound to the stack's host only, its REST API (``GET /connectors`` is the probe) on
``LIVECTX_STACK_CONNECT_PORT``. Both classpaths come from Maven Central, resolved once with Maven into the
cache like the broker's: the worker (``connect-runtime``, ``connect-json``, ``connect-transforms``) into
``<cache>/connect-<version>/lib`` and Debezium's connector (its own jars only: Kafka's and SLF4J's come from
the worker) into ``<cache>/debezium-<version>/debezium-connector-postgres``, the worker's ``plugin.path``.

Version catch: Debezium 3.6 is built against Kafka 4.3 and fails on a 4.4 worker
(``NoClassDefFoundError: org/apache/kafka/common/utils/Sanitizer``), so the worker is Connect 4.3.x against
the 4.4 broker (compatible clients). The worker lets connectors override producer settings
(``connector.client.config.override.policy=All``): :mod:`livectx.cdc.connector` sets ``linger.ms`` for
latency.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

from livectx.errors import ServiceError
from livectx.settings import Settings
from livectx.stack.java import java_env
from livectx.stack.kafka import LOG4J_VERSION, java_executable
from livectx.stack.process import ManagedProcess, ensure_port_free, require_executable, wait_ready

MAVEN_HINT = "Maven is required to fetch Kafka Connect and Debezium from Maven Central: apt-get install -y maven"
PLUGIN = "debezium-connector-postgres"
#: The worker's storage topics, next to the platform's own (``livectx.*``).
CONFIG_TOPIC = "livectx.connect.configs"
OFFSET_TOPIC = "livectx.connect.offsets"
STATUS_TOPIC = "livectx.connect.status"


class ConnectWorker:
    """Install, configure, start, probe and stop the local Kafka Connect worker."""

    name = "connect"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        stack = settings.stack
        self.home = stack.state_dir / self.name
        self.lib_dir = stack.cache_dir / f"connect-{stack.connect_version}" / "lib"
        self.plugin_dir = stack.cache_dir / f"debezium-{stack.debezium_version}"
        self.process = ManagedProcess.in_state_dir(stack.state_dir, self.name)

    @property
    def address(self) -> str:
        return f"{self.settings.stack.host}:{self.settings.stack.connect_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def ensure_installed(self, progress: bool = True) -> None:
        """Resolve the worker's and the connector's jars once (~40 MB); later calls do nothing."""
        stack = self.settings.stack
        _resolve(
            "connect-pom.xml",
            {"@CONNECT_VERSION@": stack.connect_version, "@LOG4J_VERSION@": LOG4J_VERSION},
            self.lib_dir,
            f"Kafka Connect {stack.connect_version}",
            progress,
        )
        _resolve(
            "debezium-pom.xml",
            {"@DEBEZIUM_VERSION@": stack.debezium_version},
            self.plugin_dir / PLUGIN,
            f"Debezium {stack.debezium_version}",
            progress,
        )

    def worker_properties(self) -> str:
        stack = self.settings.stack
        replication = str(stack.kafka_replication[0])  # its storage topics follow the broker count
        lines = {
            "bootstrap.servers": ",".join(stack.kafka_addresses),
            "group.id": "livectx-connect",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            # Plain JSON envelopes: what livectx's decoders (and any other consumer) read without a registry.
            "key.converter.schemas.enable": "false",
            "value.converter.schemas.enable": "false",
            "config.storage.topic": CONFIG_TOPIC,
            "offset.storage.topic": OFFSET_TOPIC,
            "status.storage.topic": STATUS_TOPIC,
            "config.storage.replication.factor": replication,
            "offset.storage.replication.factor": replication,
            "status.storage.replication.factor": replication,
            "offset.storage.partitions": "1",
            "status.storage.partitions": "1",
            # Source offsets (the LSN Debezium confirms to the slot) are flushed every second: a restart
            # re-sends at most that much, which the consumers' idempotent upserts absorb.
            "offset.flush.interval.ms": "1000",
            "listeners": f"http://{stack.host}:{stack.connect_port}",
            "rest.advertised.host.name": stack.host,
            "rest.advertised.port": str(stack.connect_port),
            "plugin.path": str(self.plugin_dir),
            "connector.client.config.override.policy": "All",
            "producer.linger.ms": "0",
            "scheduled.rebalance.max.delay.ms": "0",
        }
        return "".join(f"{k}={v}\n" for k, v in lines.items())

    def start(self) -> int:
        """Start the worker (fetching it on first use). Returns the PID; does not wait."""
        self.ensure_installed()
        stack = self.settings.stack
        ensure_port_free(stack.host, stack.connect_port, "Kafka Connect", "LIVECTX_STACK_CONNECT_PORT")
        self.home.mkdir(parents=True, exist_ok=True)
        props = self.home / "connect-distributed.properties"
        props.write_text(self.worker_properties())
        log4j = self.home / "log4j2.properties"
        log4j.write_text(resources.files("livectx.stack").joinpath("resources/log4j2.properties").read_text())
        argv = [
            java_executable(),
            f"-Xmx{stack.connect_heap}",
            "-XX:+UseSerialGC",  # one small heap on a shared machine: no parallel GC threads
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-D{self.process.marker}",
            "-cp",
            f"{self.lib_dir}/*",
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(props),
        ]
        return self.process.start(argv, cwd=self.home, env=java_env())

    def wait_ready(self, timeout_s: float) -> None:
        wait_ready(
            self.process, "Kafka Connect", self.is_healthy, timeout_s, probe_s=1.0, poll_s=0.2, waiting="did not answer"
        )

    def is_healthy(self, timeout_s: float = 2.0) -> bool:
        """The REST API lists connectors only once the worker has joined its group and read its configs."""
        try:
            with urllib.request.urlopen(f"{self.url}/connectors", timeout=timeout_s) as response:
                return response.status == 200 and isinstance(json.load(response), list)
        except (urllib.error.URLError, OSError, ValueError):
            return False


def _resolve(pom_name: str, values: dict[str, str], target: Path, what: str, progress: bool) -> None:
    """``mvn dependency:copy-dependencies`` of a shipped POM into ``target``, renamed in atomically."""
    if target.is_dir() and any(target.glob("*.jar")):
        return
    mvn = require_executable("mvn", MAVEN_HINT)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        template = resources.files("livectx.stack").joinpath(f"resources/{pom_name}").read_text()
        for placeholder, value in values.items():
            template = template.replace(placeholder, value)
        pom = Path(tmp) / "pom.xml"
        pom.write_text(template)
        staging = Path(tmp) / "lib"
        cmd = [mvn, "-B", *([] if progress else ["-q"]), "-f", str(pom), "dependency:copy-dependencies"]
        cmd += ["-DincludeScope=runtime", f"-DoutputDirectory={staging}"]
        result = subprocess.run(cmd, capture_output=not progress, text=True)
        if result.returncode != 0 or not staging.is_dir():
            detail = (result.stdout or "")[-2000:] if not progress else ""
            raise ServiceError(
                f"Maven could not fetch {what} from Maven Central (check network access to the Maven registry)"
                f"{': ' + detail if detail else ''}"
            )
        staging.rename(target)  # atomic: a half-downloaded classpath is never used
