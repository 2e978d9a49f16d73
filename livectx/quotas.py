"""Kafka user quotas (producer/consumer byte rates, request percentage) through Kafka's own ConfigCommand.

confluent-kafka's AdminClient has no client-quota operations (librdkafka implements neither
DescribeClientQuotas nor AlterClientQuotas), so livectx runs the Java admin client that ships with the
broker's jars: ``org.apache.kafka.tools.ConfigCommand`` (what ``kafka-configs.sh`` runs), from the same
cached classpath as the local broker, pointed at whatever cluster the settings name. Its connection
properties, including the SASL password, go in a 0600 file in a private temporary folder that is
deleted afterwards, never on the command line. One JVM describes every user's quotas; one more per
principal whose quotas differ.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from livectx.errors import LivectxError
from livectx.settings import Settings

_LINE = re.compile(r"Quota configs for user-principal '([^']+)' are (.*)$")
QUOTA_KEYS = ("producer_byte_rate", "consumer_byte_rate", "request_percentage")


class QuotaTool:
    """Describe and alter user quotas of the configured cluster."""

    def __init__(self, settings: Settings) -> None:
        from livectx.stack.kafka import KafkaBroker, java_executable

        self.settings = settings
        self.lib = KafkaBroker(settings).ensure_installed(progress=False)
        self.java = java_executable()

    def describe(self) -> dict[str, dict[str, float]]:
        """Every user's quotas the broker holds, as ``{principal: {config: value}}``."""
        out = self._run(["--describe", "--entity-type", "users"])
        found: dict[str, dict[str, float]] = {}
        for line in out.splitlines():
            match = _LINE.search(line.strip())
            if match:
                pairs = (p.split("=", 1) for p in match.group(2).split(", ") if "=" in p)
                found[match.group(1)] = {k: float(v) for k, v in pairs}
        return found

    def alter(self, principal: str, want: dict[str, float], have: dict[str, float]) -> None:
        """Set ``want`` on ``principal`` and delete the quotas it has that ``want`` does not declare."""
        args = ["--alter", "--entity-type", "users", "--entity-name", principal]
        if want:
            args += ["--add-config", ",".join(f"{k}={_number(v)}" for k, v in sorted(want.items()))]
        removed = sorted(set(have) - set(want))
        if removed:
            args += ["--delete-config", ",".join(removed)]
        if want or removed:
            self._run(args)

    def _run(self, args: list[str]) -> str:
        with tempfile.TemporaryDirectory(prefix="livectx-quotas-") as tmp:  # created 0700
            props = Path(tmp) / "client.properties"
            props.write_text("".join(f"{k}={v}\n" for k, v in java_client_properties(self.settings).items()))
            props.chmod(0o600)
            cmd = [
                self.java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-Dlog4j2.level=WARN",
                "-cp", f"{self.lib}/*", "org.apache.kafka.tools.ConfigCommand",
                "--bootstrap-server", self.settings.kafka_bootstrap, "--command-config", str(props), *args,
            ]  # fmt: skip
            from livectx.stack.java import java_env

            result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=java_env())
        if result.returncode != 0:
            lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
            reason = next(
                (line for line in lines if "Exception" in line or "Error" in line), lines[-1] if lines else ""
            )
            raise LivectxError(f"kafka ConfigCommand {args[0]} failed: {_scrub(reason, self.settings)[:300]}")
        return result.stdout


def java_client_properties(settings: Settings) -> dict[str, str]:
    """The Java client's equivalent of the librdkafka options in the settings (security, SASL, CA)."""
    rd: dict[str, Any] = settings.kafka_config()
    props: dict[str, str] = {}
    protocol = str(rd.get("security.protocol", "PLAINTEXT")).upper()
    props["security.protocol"] = protocol
    if protocol.startswith("SASL"):
        mechanism = str(rd.get("sasl.mechanisms", rd.get("sasl.mechanism", "PLAIN"))).upper()
        props["sasl.mechanism"] = mechanism
        module = (
            "org.apache.kafka.common.security.scram.ScramLoginModule"
            if mechanism.startswith("SCRAM")
            else "org.apache.kafka.common.security.plain.PlainLoginModule"
        )
        user = _escape(str(rd.get("sasl.username", "")))
        password = _escape(str(rd.get("sasl.password", "")))
        props["sasl.jaas.config"] = f'{module} required username="{user}" password="{password}";'
    if protocol.endswith("SSL") and rd.get("ssl.ca.location"):
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.location"] = str(rd["ssl.ca.location"])
    return props


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _scrub(text: str, settings: Settings) -> str:
    """``text`` without the SASL password, should the Java client ever echo its configuration."""
    secret = str(settings.kafka_config().get("sasl.password") or "")
    return text.replace(secret, "****") if secret else text


def quota_changes(
    tenants: list[Any], live: dict[str, dict[str, float]]
) -> list[tuple[str, str, dict[str, float], dict[str, float]]]:
    """``(tenant, principal, want, have)`` for every principal whose live quotas differ from its tenant's."""
    changes = []
    for tenant in tenants:
        want = tenant.quota.as_configs()
        for principal in tenant.principals:
            have = {k: v for k, v in live.get(principal, {}).items() if k in QUOTA_KEYS}
            if have != want:
                changes.append((tenant.name, principal, want, have))
    return changes


def describe_change(want: dict[str, float], have: dict[str, float]) -> str:
    parts = [f"{k}={_number(v)}" + (f" (was {_number(have[k])})" if k in have else "") for k, v in sorted(want.items())]
    parts += [f"{k} removed (was {_number(have[k])})" for k in sorted(set(have) - set(want))]
    return ", ".join(parts)
