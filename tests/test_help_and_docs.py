"""Every command has ``--help`` with examples, and a section in docs/cli.md.

The rule: each command path (``listen``, ``forwarder run``; a group such as ``forwarder``
too, for its help) shows an ``Examples:`` block in its ``--help`` with at least one
``azs-syslog …`` line; each runnable command has a ``## <command path>`` section in
docs/cli.md, the command-line reference, which links to the detailed guide when there is one.
"""

from __future__ import annotations

import re

import click
import pytest

from azs_syslog.cli import COMMANDS, cli
from tests.conftest import REPO_ROOT, run_cli


def command_paths() -> list[tuple[str, ...]]:
    """Every command path: the top-level commands, and each group's subcommands."""
    context = click.Context(cli)
    paths: list[tuple[str, ...]] = []
    for name in sorted(COMMANDS):
        command = cli.get_command(context, name)
        assert command is not None, f"{name} is in the registry but cannot be imported"
        paths.append((name,))
        if isinstance(command, click.Group):
            paths.extend((name, sub) for sub in sorted(command.list_commands(context)))
    return paths


def is_group(path: tuple[str, ...]) -> bool:
    command = cli.get_command(click.Context(cli), path[0])
    return len(path) == 1 and isinstance(command, click.Group)


def test_every_registered_command_is_walked() -> None:
    names = {" ".join(path) for path in command_paths()}
    assert set(COMMANDS) <= names
    assert {"forwarder run", "forwarder status", "demo", "listen"} <= names


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_help_exits_0_and_shows_an_example(path: tuple[str, ...]) -> None:
    result = run_cli([*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    examples = result.output.split("Examples:", 1)
    assert len(examples) == 2, f"`azs-syslog {' '.join(path)} --help` has no Examples: block"
    assert re.search(r"^\s+(?:\S+=\S+ )?azs-syslog ", examples[1], re.MULTILINE), (
        "the Examples: block shows no azs-syslog command line"
    )


def _doc_sections() -> set[str]:
    text = (REPO_ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    return {match.strip() for match in re.findall(r"^## (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=" ".join(p)) for p in command_paths() if not is_group(p)],
)
def test_every_command_has_a_section_in_docs_cli(path: tuple[str, ...]) -> None:
    assert " ".join(path) in _doc_sections(), f"docs/cli.md has no '## {' '.join(path)}' section"


def test_docs_links_resolve() -> None:
    """Relative links between the docs (and from the README) point at files that exist."""
    docs = [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]
    missing: list[str] = []
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                missing.append(f"{doc.name}: {target}")
    assert not missing, missing


def test_docs_index_lists_every_guide() -> None:
    index = (REPO_ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for doc in sorted((REPO_ROOT / "docs").glob("*.md")):
        if doc.name != "README.md":
            assert f"({doc.name})" in index, f"docs/README.md does not link {doc.name}"
