"""Apache Kafka 4.x in KRaft combined mode (each node broker + controller), built from Maven Central artifacts.

One node by default; ``LIVECTX_STACK_KAFKA_BROKERS=3`` runs three, all controller voters (a static quorum),
each with its own data dir and ports (see :attr:`StackSettings.kafka_node_ports`), and every replication
setting at 3 with ``min.insync.replicas`` 2, so one node can die without losing or refusing a write.
The classpath is resolved once with Maven into ``<cache>/kafka-<version>/lib`` (outside the repo, shared
by every checkout), each log directory is formatted once, and readiness is an AdminClient metadata probe.
Transactions work on one node because the transaction state log is configured with replication 1.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import uuid
from importlib import resources
from pathlib import Path

from livectx.errors import ServiceError
from livectx.settings import Settings, StackSettings
from livectx.stack.java import java_env as _java_env
from livectx.stack.process import ManagedProcess, ensure_port_free, require_executable, wait_ready
from livectx.stack.secure import BROKER_CN, KAFKA_ADMIN, SecureMaterial, check_mode

LOG4J_VERSION = "2.25.5"  # matches log4j-core in kafka_2.13 4.4.0's dependency tree
JAVA_HINT = "Java 17+ is required for Kafka: apt-get install -y openjdk-17-jre-headless"
MAVEN_HINT = "Maven is required to fetch Kafka from Maven Central: apt-get install -y maven"


class KafkaBroker:
    """Install, configure, start, probe and stop one local node: ``kafka`` (node 1, the only one by
    default, laid out as it always was) or ``kafka-<n>``."""

    def __init__(self, settings: Settings, node: int = 1) -> None:
        self.settings = settings
        stack = settings.stack
        self.node = node
        self.name = node_name(node)
        self.home = stack.state_dir / self.name
        self.data_dir = self.home / "data"
        self.lib_dir = stack.cache_dir / f"kafka-{stack.kafka_version}" / "lib"
        self.process = ManagedProcess.in_state_dir(stack.state_dir, self.name)
        self.port, self.controller_port = _node_ports(stack, node)

    @property
    def address(self) -> str:
        return f"{self.settings.stack.host}:{self.port}"

    @property
    def clustered(self) -> bool:
        return self.settings.stack.kafka_brokers > 1

    def ensure_installed(self, progress: bool = True) -> Path:
        """Resolve the broker's jars from Maven Central once; later calls return the cached folder."""
        if self.lib_dir.is_dir() and any(self.lib_dir.glob("kafka_2.13-*.jar")):
            return self.lib_dir
        java_executable()
        mvn = require_executable("mvn", MAVEN_HINT)
        self.lib_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.lib_dir.parent) as tmp:
            pom = Path(tmp) / "pom.xml"
            template = resources.files("livectx.stack").joinpath("resources/kafka-pom.xml").read_text()
            pom.write_text(
                template.replace("@KAFKA_VERSION@", self.settings.stack.kafka_version).replace(
                    "@LOG4J_VERSION@", LOG4J_VERSION
                )
            )
            staging = Path(tmp) / "lib"
            cmd = [
                mvn,
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ]
            if not progress:
                cmd.insert(1, "-q")
            result = subprocess.run(cmd, capture_output=not progress, text=True)
            if result.returncode != 0:
                detail = (result.stdout or "")[-2000:] if not progress else ""
                raise ServiceError(
                    f"Maven could not fetch Kafka {self.settings.stack.kafka_version} from Maven Central "
                    f"(check network access to the Maven registry){': ' + detail if detail else ''}"
                )
            staging.rename(self.lib_dir)  # atomic: a half-downloaded classpath is never used
        return self.lib_dir

    def server_properties(self) -> str:
        stack = self.settings.stack
        host = stack.host
        port, controller = self.port, self.controller_port
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(self.node),
            "controller.quorum.bootstrap.servers": f"{host}:{controller}",
            "controller.listener.names": "CONTROLLER",
            # Explicit hosts everywhere: an empty host makes the broker resolve its hostname, which can
            # stall on machines without DNS.
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            # Replication 1 / min ISR 1 is what lets transactions (exactly-once) work on a single node.
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        if self.clustered:
            del lines["controller.quorum.bootstrap.servers"]  # the static voters below replace it
            lines.update(cluster_properties(self.settings))
        if stack.secure:
            lines.update(secure_properties(self.settings))
        return "".join(f"{k}={v}\n" for k, v in lines.items())

    def start(self) -> int:
        """Start the broker (formatting its log dir on first use). Returns the PID; does not wait."""
        stack = self.settings.stack
        if stack.secure and self.clustered:
            raise ServiceError(
                "the secured stack runs one Kafka node: unset LIVECTX_STACK_KAFKA_BROKERS (or --brokers) "
                "or LIVECTX_STACK_SECURE"
            )
        lib = self.ensure_installed()
        java = java_executable()
        which = "" if self.node == 1 else f" node {self.node}"
        ensure_port_free(stack.host, self.port, f"Kafka{which}", "LIVECTX_STACK_KAFKA_PORT")
        ensure_port_free(
            stack.host, self.controller_port, f"the Kafka controller{which}", "LIVECTX_STACK_KAFKA_CONTROLLER_PORT"
        )
        formatted = (self.data_dir / "meta.properties").exists()
        check_topology(self.settings, self.home, formatted)
        self.home.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        check_mode(self.settings, (self.data_dir / "meta.properties").exists())
        if stack.secure:
            SecureMaterial.of(self.settings).ensure()
        fd = os.open(props, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the secured broker's own password
        with os.fdopen(fd, "w") as fh:
            fh.write(self.server_properties())
        log4j = self.home / "log4j2.properties"
        log4j.write_text(resources.files("livectx.stack").joinpath("resources/log4j2.properties").read_text())
        classpath = f"{lib}/*"
        if not formatted:
            self._format(java, classpath, props, log4j)
        argv = [
            java,
            "-Xms256m",
            f"-Xmx{stack.kafka_cluster_heap if self.clustered else stack.kafka_heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-D{self.process.marker}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(props),
        ]
        return self.process.start(argv, cwd=self.home, env=_java_env())

    def _format(self, java: str, classpath: str, props: Path, log4j: Path) -> None:
        cmd = [
            java,
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            *([] if self.clustered else ["--standalone"]),  # a cluster's voters are static, in the properties
            "-t",
            self._cluster_id() if self.clustered else _kafka_uuid(),
            "-c",
            str(props),
            "--ignore-formatted",
        ]
        if self.settings.stack.secure:  # the super-user's SCRAM credential must exist before the broker starts
            password = SecureMaterial.of(self.settings).password("kafka_admin")
            cmd += ["--add-scram", f"SCRAM-SHA-512=[name={KAFKA_ADMIN},password={password}]"]
        result = subprocess.run(cmd, capture_output=True, text=True, env=_java_env())
        if result.returncode != 0:
            raise ServiceError(f"formatting the Kafka log dir {self.data_dir} failed: {result.stderr[-1000:]}")
        (self.home / TOPOLOGY).write_text(f"{self.settings.stack.kafka_brokers}\n")

    def _cluster_id(self) -> str:
        """Every node of a cluster is formatted with one id, kept in node 1's home."""
        path = self.settings.stack.state_dir / node_name(1) / "cluster-id"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_kafka_uuid() + "\n")
        return path.read_text().strip()

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the broker answers a metadata request, or raise with the log's last lines."""
        wait_ready(
            self.process, "Kafka broker", self.is_healthy, timeout_s, probe_s=1.0, poll_s=0.1, waiting="did not answer"
        )

    def is_healthy(self, timeout_s: float = 2.0) -> bool:
        """A metadata round trip through the real client, which is what every worker needs."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            self.settings.kafka_config(
                **{"bootstrap.servers": self.address, "socket.connection.setup.timeout.ms": 1000, "log_level": 0}
            )
        )  # a refused connection while starting is expected
        try:
            metadata = admin.list_topics(timeout=timeout_s)
        except Exception:
            return False
        # In a cluster the node must have registered itself: another node answering is not this one ready.
        return self.node in metadata.brokers if self.clustered else bool(metadata.brokers)


#: How many nodes a node's data dir was formatted for: a 1-node log dir cannot join a 3-node quorum.
TOPOLOGY = "brokers"


def node_name(node: int) -> str:
    return "kafka" if node == 1 else f"kafka-{node}"


def _node_ports(stack: StackSettings, node: int) -> tuple[int, int]:
    offset = 2 * (node - 1)  # the scheme of StackSettings.kafka_node_ports, also for a node beyond the count
    return stack.kafka_port + offset, stack.kafka_controller_port + offset


def check_topology(settings: Settings, home: Path, formatted: bool) -> None:
    """Refuse to start a node whose data dir belongs to a cluster of another size (one line, with the fix)."""
    if not formatted:
        return
    path = home / TOPOLOGY
    was = int(path.read_text().strip()) if path.exists() else 1  # formatted before clusters existed: 1 node
    wanted = settings.stack.kafka_brokers
    if was != wanted:
        raise ServiceError(
            f"the Kafka data in {home} is for {was} broker(s), the settings ask for {wanted} "
            f"(LIVECTX_STACK_KAFKA_BROKERS): set it back to {was}, or `livectx stack down kafka --purge` "
            "(deletes the Kafka data) first"
        )


def cluster_properties(settings: Settings) -> dict[str, str]:
    """A static quorum of every node, and replication 3 / min ISR 2 (2 / 1 on two nodes) for the product's
    topics and the brokers' internal ones, which the 1-node defaults set to 1."""
    stack = settings.stack
    factor, min_isr = (str(n) for n in stack.kafka_replication)
    voters = ",".join(f"{n}@{stack.host}:{c}" for n, (_, c) in enumerate(stack.kafka_node_ports, start=1))
    return {
        "controller.quorum.voters": voters,
        "default.replication.factor": factor,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": factor,
        "transaction.state.log.replication.factor": factor,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": factor,
        "share.coordinator.state.topic.min.isr": min_isr,
        # A killed node's partitions must move to a live replica quickly, and an unclean leader (data loss)
        # is never elected: the defaults, spelled out because the chaos tests rely on them.
        "unclean.leader.election.enable": "false",
        "broker.session.timeout.ms": "6000",
        "broker.heartbeat.interval.ms": "1000",
    }


def secure_properties(settings: Settings) -> dict[str, str]:
    """The secured broker: SASL_SSL (SCRAM-SHA-512) for clients and between brokers, mutual TLS on the
    controller listener, KRaft's ``StandardAuthorizer`` denying whatever no ACL allows, and two super-users:
    the platform's ``admin`` and the broker's own certificate principal."""
    stack = settings.stack
    material = SecureMaterial.of(settings)
    host = stack.host
    password = material.password("kafka_admin")
    login = "org.apache.kafka.common.security.scram.ScramLoginModule"
    jaas = f'{login} required username="{KAFKA_ADMIN}" password="{password}";'
    return {
        "listeners": f"SASL_SSL://{host}:{stack.kafka_port},CONTROLLER://{host}:{stack.kafka_controller_port}",
        "advertised.listeners": f"SASL_SSL://{host}:{stack.kafka_port},CONTROLLER://{host}:{stack.kafka_controller_port}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "CONTROLLER:SSL,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(material.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(material.ca),
        "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{KAFKA_ADMIN};User:CN={BROKER_CN}",
        "allow.everyone.if.no.acl.found": "false",
    }


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is not None and candidate.exists():
        return str(candidate)
    return require_executable("java", JAVA_HINT)


def _kafka_uuid() -> str:
    """A cluster id the way Kafka's ``Uuid.randomUuid()`` makes one (base64url, no padding, no leading '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text
