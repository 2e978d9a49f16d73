"""A local Redis server for Feast's online store, started from the system's ``redis-server``.

On the secured stack it runs with an ACL file: the ``default`` user is off and the platform user
``livectx`` has a password, stored in the ACL file only as its SHA-256 (Redis's ``#<hash>`` form).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from livectx.errors import MissingPrerequisiteError, ServiceError
from livectx.settings import Settings
from livectx.stack.process import ManagedProcess, ensure_port_free, wait_until
from livectx.stack.secure import REDIS_USER, SecureMaterial

REDIS_HINT = "redis-server is required for the online store: apt-get install -y redis-server"


class RedisServer:
    name = "redis"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        stack = settings.stack
        self.home = stack.state_dir / "redis"
        # The marker must survive redis-server rewriting its process title: --proc-title-template keeps it.
        self.process = ManagedProcess.in_state_dir(stack.state_dir, self.name)

    @property
    def address(self) -> str:
        return f"{self.settings.stack.host}:{self.settings.stack.redis_port}"

    def start(self) -> int:
        executable = shutil.which("redis-server")
        if executable is None:
            raise MissingPrerequisiteError(REDIS_HINT)
        stack = self.settings.stack
        ensure_port_free(stack.host, stack.redis_port, "Redis", "LIVECTX_STACK_REDIS_PORT")
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [
            executable,
            "--bind",
            stack.host,
            "--port",
            str(stack.redis_port),
            "--dir",
            str(self.home),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            "",
            # The online store is a cache of the stream: snapshots are kept, the log is the source of truth.
            "--save",
            "300 1",
            "--appendonly",
            "no",
            "--proc-title-template",
            f"{{title}} {{listen-addr}} {self.process.marker}",
        ]
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
        pid = self.process.pid()
        ok = wait_until(lambda: self.process.pid() is None or self.is_healthy(timeout_s=0.5), timeout_s)
        if not ok or self.process.pid() is None:
            raise ServiceError(
                f"Redis (pid {pid}) did not become ready; see {self.process.log_file}:\n{self.process.log_tail()}"
            )

    def is_healthy(self, timeout_s: float = 1.0) -> bool:
        import redis

        password = self.settings.local_secret("redis")
        client = redis.Redis(
            host=self.settings.stack.host,
            port=self.settings.stack.redis_port,
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
