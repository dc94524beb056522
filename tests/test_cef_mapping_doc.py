"""docs/cef-mapping.md stands alone: its event tables are the code's, and no doc points at
texts outside the repository."""

from __future__ import annotations

import re

from azs_syslog.events.endpoint import PEP_EVENTS, REP_EVENTS, WAC_EVENTS
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
MAPPING = (DOCS / "cef-mapping.md").read_text(encoding="utf-8")


def test_pep_and_rep_table_is_the_codes() -> None:
    rows = re.findall(r"^\| (pep|rep) \| `(\w+)` \| (\d+) \| `(\w+)` \| (\d+) \|$", MAPPING, re.M)
    documented = {(kind, name): (int(i), task, int(sev)) for kind, name, i, task, sev in rows}
    expected = {("pep", name): row for name, row in PEP_EVENTS.items()}
    expected |= {("rep", name): row for name, row in REP_EVENTS.items()}
    assert documented == expected
    assert len(rows) == 18


def test_wac_table_is_the_codes() -> None:
    rows = re.findall(r"^\| `(WAC\w+)` \| (\d+) \((\w+)\) \|$", MAPPING, re.M)
    assert {name: int(sev) for name, sev, _ in rows} == WAC_EVENTS
    assert len(rows) == 14
    names = {8: "Error", 2: "Information"}
    assert all(names[int(sev)] == label for _, sev, label in rows)


def test_docs_refer_to_nothing_outside_the_repository() -> None:
    outside = re.compile(r"\bSPEC\b|\.\./shared|/work/|\bissue \d+|issues/\d+", re.I)
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(DOCS.glob("*.md"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert found == []
