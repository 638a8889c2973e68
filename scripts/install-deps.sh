#!/usr/bin/env bash
# Installs what ctorch needs to build and test on Debian 12 (bookworm):
#   - Debian packages: compiler, CMake, pkg-config, OpenBLAS (OpenMP build), LAPACKE,
#     SLEEF, OpenMP, and the Fashion-MNIST data set used by the examples;
#   - Python packages for the conformance suite: torch, numpy, scipy, pytest.
# Idempotent: whatever is already present is left alone, and when nothing is missing
# the script only checks and exits (no apt-get update, no network).
# Run as root, or as a user with sudo.
set -euo pipefail

APT_PACKAGES=(build-essential cmake pkg-config libopenblas-openmp-dev liblapacke-dev
              libsleef-dev zlib1g-dev dataset-fashion-mnist libomp-dev clang libdnnl-dev)
# Python modules (each installs from the pip package of the same name)
PY_MODULES=(torch numpy scipy pytest safetensors)
PYTHON=${PYTHON:-python3}

log() { printf 'install-deps: %s\n' "$*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    fi
fi
as_root() {
    if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
        log "need root to run: $*"
        log "run this script as root or install sudo"
        exit 1
    fi
    "${SUDO[@]}" "$@"
}

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# ---- Debian packages ----
missing=()
for p in "${APT_PACKAGES[@]}"; do
    is_installed "$p" || missing+=("$p")
done
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    missing+=(python3)
fi
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
else
    log "Debian packages present: ${APT_PACKAGES[*]}"
fi

# ---- Python packages ----
# find_spec locates a module without importing it (importing torch takes seconds).
py_find='import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))'
read -r -a py_missing <<<"$("$PYTHON" -c "$py_find" "${PY_MODULES[@]}")"
if [ ${#py_missing[@]} -gt 0 ]; then
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip
    fi
    pip_flags=(--disable-pip-version-check --no-input)
    # Debian's own python3 refuses pip installs into it (PEP 668) unless told otherwise.
    if "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")) else 1)'; then
        pip_flags+=(--break-system-packages)
    fi
    pip_cmd=("$PYTHON" -m pip install "${pip_flags[@]}" "${py_missing[@]}")
    log "${pip_cmd[*]}"
    # pip installs into the interpreter's own site-packages: root is needed only when
    # that is not writable by us.
    site=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    if [ -w "$site" ]; then
        "${pip_cmd[@]}"
    else
        as_root "${pip_cmd[@]}"
    fi
    for m in "${py_missing[@]}"; do
        "$PYTHON" -c "import $m" >/dev/null 2>&1 || { log "python module $m still cannot be imported"; exit 1; }
    done
else
    log "Python packages present: ${PY_MODULES[*]}"
fi
log "done"
