"""The queue's tables, and the migration of a queue file made by an older version."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from azs_syslog.errors import QueueError
from azs_syslog.queue.records import COUNTERS

# 3: a batch's raw lines are stored compressed (records.encode_raw); the rows of version 2
# need no change (decode_raw still reads their uncompressed layout), but a version that
# cannot read the new layout must refuse the file rather than meet such a batch.
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    nbytes INTEGER NOT NULL,
    render_key TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    level INTEGER NOT NULL DEFAULT 0,
    released_level INTEGER,
    lengths BLOB NOT NULL,
    wire BLOB NOT NULL,
    raw BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS inflight (
    batch_id INTEGER PRIMARY KEY,
    sent_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pinned (
    batch_id INTEGER PRIMARY KEY,
    server TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

# Version 1 -> 2: the columns a batch's configuration generation and security level live in.
# ADD COLUMN puts them after ``raw``, so reading them walks the pages of a batch's raw lines,
# which the layout of a new file avoids. An empty queue (the usual state at an upgrade) is
# therefore given the new layout instead; a non-empty one keeps the added columns.
_MIGRATE_1_TO_2 = (
    "ALTER TABLE batches ADD COLUMN generation INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE batches ADD COLUMN level INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE batches ADD COLUMN released_level INTEGER",
)

# A batch is *held* when it was accepted under a higher security level than the current one
# (and the operator has not released it down to the current level). Batches rendered for a
# newer configuration than the worker's are not held: they wait for the worker to switch;
# except those up to ``:stale`` (a batch id), which the worker treats as older (a configuration
# file that went back in generations).
HELD = (
    "(generation <= :generation OR id <= :stale) AND level > :level"
    " AND (released_level IS NULL OR released_level > :level)"
)


def create_tables(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def _counter(db: sqlite3.Connection, name: str) -> int:
    row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def set_up(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables and counters, or bring an older queue file to this schema (inside a
    write transaction): idempotent."""
    create_tables(db)
    db.executemany(
        "INSERT OR IGNORE INTO counters (name, value) VALUES (?, 0)",
        [(name,) for name in (*COUNTERS, "schema_version")],
    )
    # The sequence numbers' stream: a new queue file is a new stream (the numbers
    # start again at 1), and the SIEM tells it by this id changing.
    db.execute(
        "INSERT OR IGNORE INTO counters (name, value) VALUES ('stream_id', ?)",
        (int.from_bytes(os.urandom(8), "big") >> 1,),
    )
    version = _counter(db, "schema_version")
    if version == 1:
        _migrate_1_to_2(db)
    if version in (0, 1, 2):
        db.execute(
            "UPDATE counters SET value = ? WHERE name = 'schema_version'",
            (SCHEMA_VERSION,),
        )
    elif version != SCHEMA_VERSION:
        raise QueueError(
            f"{path}: queue schema version {version} is not supported",
            fix="use the azs-syslog version that created it to drain it first",
        )


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    empty = db.execute("SELECT 1 FROM batches LIMIT 1").fetchone() is None
    if not empty:
        for statement in _MIGRATE_1_TO_2:
            db.execute(statement)
        return
    # Keep the id sequence: ids never go back (a cursor may be past them).
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'batches'").fetchone()
    db.execute("DROP TABLE batches")
    db.execute(_SCHEMA.split(";")[0])
    if row is not None:
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('batches', ?)", row)
