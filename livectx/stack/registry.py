"""Apicurio Registry 3.x: the local stack's schema registry, with its Confluent-compatible API.

Confluent's own registry is not on Maven Central; Apicurio's ready-to-run distribution is
(``io.apicurio:apicurio-registry-app:<v>:tar.gz:all``, a Quarkus fast-jar). It is fetched with Maven once
into ``<cache>/apicurio-registry-<version>`` (outside the repo, shared by every checkout, unpacked into a
temporary folder and renamed, so a half-unpacked copy is never run), like Kafka's jars. Storage is an H2
file under the stack's state dir, so schemas survive ``stack down``/``up`` without depending on the
stack's Postgres being up first. Both of its listeners are bound to the stack's host: the management
interface (readiness probe) defaults to 0.0.0.0:9000 otherwise. It needs Java 21+ (:mod:`livectx.stack.java`).
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from livectx.errors import MissingPrerequisiteError, ServiceError
from livectx.settings import Settings
from livectx.stack.java import find_java, java_env
from livectx.stack.process import ManagedProcess, ensure_port_free, wait_ready

MIN_JAVA = 21
ARTIFACT = "io.apicurio:apicurio-registry-app:{version}:tar.gz:all"
MAVEN_HINT = "Maven is required to fetch Apicurio Registry from Maven Central: apt-get install -y maven"


class SchemaRegistry:
    """Install, start, probe and stop the local Apicurio Registry."""

    name = "schema-registry"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        stack = settings.stack
        self.home = stack.state_dir / self.name
        self.data_dir = self.home / "data"
        self.install_dir = stack.cache_dir / f"apicurio-registry-{stack.schema_registry_version}"
        self.process = ManagedProcess.in_state_dir(stack.state_dir, self.name)

    @property
    def address(self) -> str:
        return f"{self.settings.stack.host}:{self.settings.stack.schema_registry_port}"

    @property
    def ready_url(self) -> str:
        stack = self.settings.stack
        return f"http://{stack.host}:{stack.schema_registry_management_port}/health/ready"

    def ensure_installed(self, progress: bool = True) -> Path:
        """Fetch and unpack the distribution once (~160 MB); later calls return the cached folder."""
        if (self.install_dir / "quarkus-run.jar").is_file():
            return self.install_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise MissingPrerequisiteError(MAVEN_HINT)
        version = self.settings.stack.schema_registry_version
        self.install_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.install_dir.parent) as tmp:
            cmd = [
                mvn,
                "-B",
                *([] if progress else ["-q"]),
                "dependency:copy",
                f"-Dartifact={ARTIFACT.format(version=version)}",
                f"-DoutputDirectory={tmp}",
            ]
            result = subprocess.run(cmd, capture_output=not progress, text=True)
            archives = list(Path(tmp).glob("apicurio-registry-app-*.tar.gz"))
            if result.returncode != 0 or not archives:
                detail = (result.stdout or "")[-2000:] if not progress else ""
                raise ServiceError(
                    f"Maven could not fetch Apicurio Registry {version} from Maven Central "
                    f"(check network access to the Maven registry){': ' + detail if detail else ''}"
                )
            staging = Path(tmp) / "app"
            with tarfile.open(archives[0]) as archive:
                archive.extractall(staging, filter="data")
            if not (staging / "quarkus-run.jar").is_file():
                raise ServiceError(f"{archives[0].name} has no quarkus-run.jar: not an Apicurio distribution")
            staging.rename(self.install_dir)  # atomic: a half-unpacked copy is never run
        return self.install_dir

    def argv(self, java: Path, install_dir: Path) -> list[str]:
        stack = self.settings.stack
        return [
            str(java),
            f"-Xmx{stack.schema_registry_heap}",
            "-XX:+UseSerialGC",  # one small heap on a shared 2-core machine: no parallel GC threads
            "-XX:TieredStopAtLevel=1",  # C1 only: measured 3.1 s to ready instead of 5.1 s; plenty for a registry
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-D{self.process.marker}",
            f"-Dquarkus.http.host={stack.host}",
            f"-Dquarkus.http.port={stack.schema_registry_port}",
            f"-Dquarkus.management.host={stack.host}",
            f"-Dquarkus.management.port={stack.schema_registry_management_port}",
            f"-Dapicurio.datasource.url=jdbc:h2:file:{self.data_dir / 'registry'}",
            # A development registry: subjects may be deleted (Confluent's DELETE /subjects/S works).
            "-Dapicurio.rest.deletion.group.enabled=true",
            "-Dapicurio.rest.deletion.artifact.enabled=true",
            "-Dapicurio.rest.deletion.artifact-version.enabled=true",
            "-jar",
            str(install_dir / "quarkus-run.jar"),
        ]

    def start(self) -> int:
        """Start the registry (fetching it on first use). Returns the PID; does not wait."""
        install_dir = self.ensure_installed()
        java = find_java(MIN_JAVA, self.settings.stack.schema_registry_java).executable
        stack = self.settings.stack
        ensure_port_free(
            stack.host, stack.schema_registry_port, "the schema registry", "LIVECTX_STACK_SCHEMA_REGISTRY_PORT"
        )
        ensure_port_free(
            stack.host,
            stack.schema_registry_management_port,
            "the schema registry's management interface",
            "LIVECTX_STACK_SCHEMA_REGISTRY_MANAGEMENT_PORT",
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.process.start(self.argv(java, install_dir), cwd=self.home, env=java_env())

    def wait_ready(self, timeout_s: float) -> None:
        wait_ready(self.process, "schema registry", self.is_healthy, timeout_s, probe_s=1.0, poll_s=0.1)

    def is_healthy(self, timeout_s: float = 2.0) -> bool:
        """Quarkus' readiness check: storage reachable and requests answered in time."""
        try:
            with urllib.request.urlopen(self.ready_url, timeout=timeout_s) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False
