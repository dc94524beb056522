#!/usr/bin/env bash
# Installs azs-syslog into ./.venv, then runs `azs-syslog demo`: the whole chain end to end
# over mutual TLS on 127.0.0.1, in a throwaway sandbox (its own CA, certificates and home;
# the operator's configuration is never read nor changed; everything is removed at the end).
# Works on a fresh Debian with Python 3.11, as root or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check .
.venv/bin/azs-syslog --version
exec .venv/bin/azs-syslog demo
