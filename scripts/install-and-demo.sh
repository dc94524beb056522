#!/usr/bin/env bash
# Installs azs-syslog into ./.venv and runs its main job.
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
# A configuration round trip in a throwaway home (never the operator's own settings).
AZS_SYSLOG_HOME="$(mktemp -d)"
export AZS_SYSLOG_HOME
trap 'rm -rf "$AZS_SYSLOG_HOME"' EXIT
.venv/bin/azs-syslog set-syslog-server --server-name siem.example.com --server-port 6514
.venv/bin/azs-syslog get-syslog-server
