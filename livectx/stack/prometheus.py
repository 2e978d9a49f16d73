"""A local Prometheus (the Debian ``prometheus`` binary) scraping the workers that register themselves.

Optional: ``livectx stack up --with monitoring`` or ``LIVECTX_STACK_MONITORING=1``. Everything it owns is
under ``<state dir>/prometheus``: the generated ``prometheus.yml``, a copy of the shipped alerting rules
(``livectx/stack/resources/prometheus/livectx-rules.yml``, copied on every start so an upgrade brings
its rules along), the TSDB in ``data/`` and ``targets/``, the file-based service discovery folder that
:mod:`livectx.prometheus_targets` writes into. The config is regenerated on every start from the settings,
so changing the port or the scrape interval needs only ``stack down prometheus`` and ``up``.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

from livectx.prometheus_targets import targets_dir
from livectx.settings import Settings
from livectx.stack.process import ManagedProcess, ensure_port_free, require_executable, wait_ready

PROMETHEUS_HINT = "prometheus is required for --with monitoring: apt-get install -y prometheus (brings promtool)"
RULES_FILE = "livectx-rules.yml"


def rules_source() -> Path:
    """The shipped alerting rules (a real file in the installed package)."""
    return Path(str(resources.files("livectx.stack.resources") / "prometheus" / RULES_FILE))


class PrometheusServer:
    name = "prometheus"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.stack.state_dir / self.name
        self.config_file = self.home / "prometheus.yml"
        self.rules_file = self.home / "rules" / RULES_FILE
        self.data_dir = self.home / "data"
        self.targets_dir = targets_dir(settings)
        self.process = ManagedProcess.in_state_dir(settings.stack.state_dir, self.name)

    @property
    def address(self) -> str:
        return f"{self.settings.stack.host}:{self.settings.stack.prometheus_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def config(self) -> dict[str, object]:
        """``prometheus.yml`` (JSON is YAML): the livectx job from ``targets/*.json``, and itself."""
        interval = f"{self.settings.stack.prometheus_scrape_interval_s:g}s"
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
            "rule_files": [str(self.rules_file)],
            "scrape_configs": [
                {
                    "job_name": "livectx",  # a target file's own "job" label wins (livectx-features...)
                    "file_sd_configs": [{"files": [str(self.targets_dir / "*.json")], "refresh_interval": "5s"}],
                },
                {"job_name": "prometheus", "static_configs": [{"targets": [self.address]}]},
            ],
        }

    def write_config(self) -> None:
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.rules_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rules_source(), self.rules_file)
        self.config_file.write_text(json.dumps(self.config(), indent=2) + "\n")

    def argv(self, executable: str) -> list[str]:
        stack = self.settings.stack
        return [
            executable,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={stack.prometheus_retention}",
            f"--web.listen-address={self.address}",
            # Prometheus refuses unknown flags; the page title carries the marker that identifies our process.
            f"--web.page-title=livectx Prometheus {self.process.marker}",
            "--log.level=warn",
        ]

    def start(self) -> int:
        executable = require_executable("prometheus", PROMETHEUS_HINT)
        stack = self.settings.stack
        ensure_port_free(stack.host, stack.prometheus_port, "Prometheus", "LIVECTX_STACK_PROMETHEUS_PORT")
        self.write_config()
        return self.process.start(self.argv(executable), cwd=self.home)

    def wait_ready(self, timeout_s: float) -> None:
        wait_ready(self.process, "Prometheus", self.is_healthy, timeout_s, probe_s=0.5, poll_s=0.1)

    def is_healthy(self, timeout_s: float = 1.0) -> bool:
        """``/-/ready``: the TSDB is open and the rules are loaded."""
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=timeout_s) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False
