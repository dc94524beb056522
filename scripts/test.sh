#!/usr/bin/env bash
# Installs everything the tests need and runs every check.
#   * Debian packages: rsyslog, its TLS driver (rsyslog-openssl) and RELP input (rsyslog-relp),
#     python3-venv, and a C
#     compiler with the Python headers (gcc, python3-dev) for the compiled event encoder,
#     each only if missing.
#   * A virtual environment in ./.venv with the package (editable) and its test tools.
#   * Then: ruff check, ruff format --check, mypy (strict on the package; the tests are type-
#     checked too, not strictly: pyproject.toml), and the whole pytest suite.
# Works as root (CI) or as a user with sudo. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

missing=()
dpkg -s rsyslog >/dev/null 2>&1 || missing+=(rsyslog)
dpkg -s rsyslog-openssl >/dev/null 2>&1 || missing+=(rsyslog-openssl)
dpkg -s rsyslog-relp >/dev/null 2>&1 || missing+=(rsyslog-relp)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || missing+=(python3-dev)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check azs_syslog tests benchmarks
.venv/bin/ruff format --check azs_syslog tests benchmarks
.venv/bin/mypy azs_syslog
.venv/bin/mypy tests
.venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
