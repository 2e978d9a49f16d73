"""A local Redis server for Feast's online store, started from the system's ``redis-server``; or, with
``stack up --redis-cluster N``, the N masters of a local Redis Cluster (:mod:`.redis_cluster` forms it).

On the secured stack it runs with an ACL file: the ``default`` user is off and the platform user
``livectx`` has a password, stored in the ACL file only as its SHA-256 (Redis's ``#<hash>`` form).

Persistence: the append-only file, fsynced every second. The engine's exactly-once checkpoints (rows,
window state and the offsets they belong to) live here, so a restarted Redis must come back with a
consistent recent past: the AOF replays whole ``MULTI`` blocks, so it holds every checkpoint up to about a
second before the crash, each complete, and the engine notices the rollback and resumes from the offsets
it finds (:mod:`livectx_ingest.streaming.checkpoint`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from livectx.errors import ServiceError
from livectx.settings import Settings
from livectx.stack.process import ManagedProcess, ensure_port_free, require_executable, wait_ready
from livectx.stack.secure import REDIS_USER, SecureMaterial

REDIS_HINT = "redis-server is required for the online store: apt-get install -y redis-server"


class RedisServer:
    """One ``redis-server``: the stack's Redis, or node ``node`` (0-based) of its Cluster."""

    def __init__(self, settings: Settings, node: int = 0) -> None:
        self.settings = settings
        stack = settings.stack
        self.cluster = stack.redis_cluster_nodes > 0
        self.node = node
        self.name = "redis" if node == 0 else f"redis-{node + 1}"
        self.port = stack.redis_port + node
        self.home = stack.state_dir / self.name
        # The marker must survive redis-server rewriting its process title: --proc-title-template keeps it.
        self.process = ManagedProcess.in_state_dir(stack.state_dir, self.name)

    @property
    def address(self) -> str:
        return f"{self.settings.stack.host}:{self.port}"

    def start(self) -> int:
        executable = require_executable("redis-server", REDIS_HINT)
        stack = self.settings.stack
        ensure_port_free(stack.host, self.port, "Redis", "LIVECTX_STACK_REDIS_PORT")
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [
            executable,
            "--bind",
            stack.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.home),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            "",
            # The checkpoints live here (see the module docstring): every checkpoint up to ~1 s before a crash.
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--proc-title-template",
            f"{{title}} {{listen-addr}} {self.process.marker}",
        ]
        if self.cluster:
            if stack.secure:
                raise ServiceError("the secured stack runs one Redis server: drop --redis-cluster or --secure")
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            argv += ["--cluster-port", str(self.port + 10_000), "--cluster-node-timeout", "5000"]
        if stack.secure:
            argv += ["--aclfile", str(self._write_acl_file())]
        return self.process.start(argv, cwd=self.home)

    def _write_acl_file(self) -> Path:
        password = SecureMaterial.of(self.settings).ensure().password("redis")
        digest = hashlib.sha256(password.encode()).hexdigest()
        path = self.home / "users.acl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"user default off\nuser {REDIS_USER} on #{digest} ~* &* +@all\n")
        return path

    def wait_ready(self, timeout_s: float) -> None:
        wait_ready(self.process, "Redis", self.is_healthy, timeout_s, probe_s=0.5)
        if self.cluster and self.node == self.settings.stack.redis_cluster_nodes - 1:  # every node answers now
            from livectx.stack.redis_cluster import form_cluster

            form_cluster(self.settings, timeout_s)

    def is_healthy(self, timeout_s: float = 1.0) -> bool:
        import redis

        password = self.settings.local_secret("redis")
        client = redis.Redis(
            host=self.settings.stack.host,
            port=self.port,
            username=REDIS_USER if password else None,
            password=password,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()
