"""Start-up time of ``azs-syslog get-syslog-server`` (SPEC section 10: under 150 ms).

Runs each command N times, interleaved so that machine noise hits every case alike, and prints
the median and the minimum wall time of each beside ``python -c pass`` (the interpreter alone)
and ``python -c "import click"`` measured in the same run. Then checks with ``-X importtime``
which heavy modules (rich, cryptography, ssl, sqlite3) each case imports.

    python benchmarks/startup.py [--runs 30]

Not a test: it measures, it does not assert. Settings live in a throwaway AZS_SYSLOG_HOME.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUDGET_MS = 150.0
HEAVY = ("rich", "cryptography", "ssl", "sqlite3")


def run_once(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {proc.stderr.decode()}")
    return elapsed


def heavy_imports(command: list[str], env: dict[str, str]) -> list[str]:
    proc = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        env=env,
        capture_output=True,
        check=False,
    )
    found = set()
    for line in proc.stderr.decode().splitlines():
        if not line.startswith("import time:"):
            continue
        module = line.rsplit("|", 1)[-1].strip()
        top = module.split(".")[0]
        if top in HEAVY:
            found.add(top)
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per case (default 30)")
    args = parser.parse_args()

    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        empty_home = Path(tmp, "empty")
        configured_home = Path(tmp, "configured")
        base_env = dict(os.environ)
        base_env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + base_env.get("PYTHONPATH", "")
        base_env["NO_COLOR"] = "1"
        empty_env = dict(base_env, AZS_SYSLOG_HOME=str(empty_home))
        configured_env = dict(base_env, AZS_SYSLOG_HOME=str(configured_home))
        subprocess.run(
            [python, "-m", "azs_syslog", "set-syslog-server", "--server-name",
             "siem.example.com", "--server-port", "6514"],
            env=configured_env, capture_output=True, check=True,
        )  # fmt: skip

        cli = [python, "-m", "azs_syslog", "get-syslog-server"]
        cases: list[tuple[str, list[str], dict[str, str], bool]] = [
            ("python -c pass (baseline)", [python, "-c", "pass"], base_env, False),
            ('python -c "import click"', [python, "-c", "import click"], base_env, False),
            ("get-syslog-server, nothing configured", cli, empty_env, True),
            ("get-syslog-server --json, configured", [*cli, "--json"], configured_env, True),
            ("get-syslog-server (rich table), configured", cli, configured_env, True),
        ]
        script = shutil.which("azs-syslog")
        if script is not None:
            cases.append(
                ("azs-syslog get-syslog-server (console script)",
                 [script, "get-syslog-server"], configured_env, True)
            )  # fmt: skip

        timings: dict[str, list[float]] = {name: [] for name, *_ in cases}
        for _name, command, env, _ in cases:  # warm the disk cache and the .pyc files
            run_once(command, env)
        for _ in range(args.runs):
            for name, command, env, _ in cases:
                timings[name].append(run_once(command, env))

        baseline = statistics.median(timings[cases[0][0]])
        print(f"start-up, {args.runs} runs each, interleaved (python {sys.version.split()[0]})")
        print(f"{'case':<48} {'median':>9} {'min':>9} {'vs baseline':>12}")
        for name, _, _, _ in cases:
            median = statistics.median(timings[name])
            print(
                f"{name:<48} {median:>7.1f}ms {min(timings[name]):>7.1f}ms "
                f"{median - baseline:>+10.1f}ms"
            )
        print()
        worst = max(statistics.median(timings[name]) for name, *_, is_cli in cases if is_cli)
        verdict = "yes" if worst < BUDGET_MS else "NO"
        print(f"slowest command median {worst:.1f} ms; under {BUDGET_MS:.0f} ms: {verdict}")
        print()
        print("heavy modules imported (rich, cryptography, ssl, sqlite3):")
        for name, command, env, is_cli in cases:
            if is_cli and command[0] == python:
                found = heavy_imports(command, env)
                print(f"  {name:<46} {', '.join(found) or 'none'}")


if __name__ == "__main__":
    from benchmarks.installed import compile_bytecode

    compile_bytecode()  # as an install has it (benchmarks/installed.py)
    main()
