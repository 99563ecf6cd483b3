"""The journal: what a row of it holds, and what it gives back (README: The journal).

One row per run of a file (and per baseline or repair), appended beside the
tracking table, in the same transaction as the tracking row where the engine
allows. A row keeps the SQL that ran and, for an up run, the down.sql as it was
then, each up to ``SQL_CAP`` bytes (a larger file keeps its checksum only).
The SQL of the table lives in ``backends/base.py`` next to ``record()``; this
module is pure apart from reading a kept file again (``stored_text``).
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from typing import NamedTuple

from .errors import RollbackRefused
from .model import (
    ROLLBACK_IRREVERSIBLE,
    ROLLBACK_MODES,
    ROLLBACK_SQL,
    UP,
    Header,
    JournalEntry,
    Migration,
    PlanStep,
    SqlFile,
    VersionStatus,
)
from .sqlfile import read_text

#: The largest SQL file whose text the journal keeps, in bytes on disk; of a larger one
#: (a data migration) only its checksum is kept.
SQL_CAP = 1024 * 1024

# What a journal row says happened (the ``outcome`` column).
APPLIED, ROLLED_BACK, FAILED = "applied", "rolled back", "failed"
BASELINED, CHECKSUM_ACCEPTED, FORGOTTEN = "baselined", "checksum accepted", "forgotten"
#: The outcomes of rows that made (or remade) a version's tracking row.
RECORDING_OUTCOMES = (APPLIED, BASELINED, CHECKSUM_ACCEPTED)


class JournalRecord(NamedTuple):
    """A row to append; the backend adds its id, and ``client()``: who ran it, where."""

    version: str
    direction: str
    description: str
    checksum: str | None
    sql: str | None
    sql_checksum: str | None
    down_sql: str | None
    down_checksum: str | None
    transactional: bool
    rollback: str
    file: str
    started_at: datetime
    seconds: float | None
    outcome: str
    error: str | None
    statements: int
    attempt: int = 1


def bookkeeping_record(version: str, description: str, checksum: str | None,
                       outcome: str, direction: str = UP) -> JournalRecord:
    """A row for a change of the tracking table that ran no file (baseline, repair)."""
    return JournalRecord(version, direction, description, checksum, None, None, None, None,
                         True, ROLLBACK_SQL, "", now(), None, outcome, None, 0)


@functools.cache
def client() -> tuple[str, str, str]:
    """This machine's name, the OS user and the tool's version (asked once per process)."""
    from . import __version__

    # The environment first, as getpass.getuser() does, whose import (with socket's for
    # the host name) would cost 9 ms of every run that applies something.
    user = next((os.environ[name] for name in ("LOGNAME", "USER", "LNAME", "USERNAME")
                 if os.environ.get(name)), "")
    if not user and hasattr(os, "getuid"):
        import pwd

        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:  # a container's uid with no passwd entry
            user = str(os.getuid())
    host = os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "")
    return host, user, __version__


def now() -> datetime:
    """The time a run starts (UTC)."""
    return datetime.now(UTC)


def stored_text(source: SqlFile | None) -> str | None:
    """The text the journal keeps of a file: None for a file over ``SQL_CAP`` (or none).

    A small file's text is already in memory; one between the in-memory limit and
    the cap is read again (and refused if it changed since it was checked).
    """
    if source is None or source.stamp[0] > SQL_CAP:
        return None
    return read_text(source)


def time_text(value: object) -> str:
    """A journal time as text in UTC, whatever type the driver returned."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="microseconds")
    return str(value)


def vanished_step(entry: VersionStatus, applied: JournalEntry | None) -> PlanStep:
    """The rollback of a recorded version whose folder is gone, from the down.sql the
    journal kept when it was applied; RollbackRefused when nothing usable was kept."""
    assert entry.row is not None, "only recorded versions are rolled back"
    name = f"{entry.version} ({entry.description})"
    forget = ("Restore its folder from version control, or run `sibila-sqlmig repair "
              "--forget-missing` to drop its row (its changes then stay in the database). "
              "Nothing was rolled back.")
    if applied is None:
        raise RollbackRefused(
            f"Cannot roll back {name}: its folder is not in the migrations folder, and it was "
            "applied before the journal existed, so its down.sql was not kept. "
            f"{forget}")
    if applied.outcome != APPLIED or (entry.row.checksum or "").lower() != (
            applied.checksum or "").lower():
        how = ("recorded by baseline" if applied.outcome == BASELINED else
               "recorded with another up.sql than the run the journal kept" if
               applied.outcome == APPLIED else "recorded by repair with an edited up.sql")
        raise RollbackRefused(
            f"Cannot roll back {name}: its folder is not in the migrations folder, and it was "
            f"{how} (journal row {applied.id}), so no down.sql kept matches it. {forget}")
    rollback = applied.rollback if applied.rollback in ROLLBACK_MODES else ROLLBACK_SQL
    if rollback == ROLLBACK_IRREVERSIBLE:
        raise RollbackRefused(f"Cannot roll back {name}: it was applied with 'rollback: "
                              f"irreversible' in its migration.yaml. {forget}")
    if applied.down_sql is None:
        raise RollbackRefused(
            f"Cannot roll back {name}: its folder is not in the migrations folder, and its "
            f"down.sql was larger than the journal keeps ({SQL_CAP} bytes), so only its "
            f"checksum was kept. {forget}")
    location = (f"{entry.version}/down.sql as applied (journal row {applied.id}; the "
                "folder is gone)")
    text = applied.down_sql
    down = SqlFile(location, applied.down_checksum or "", (len(text.encode()), 0), text)
    header = Header(applied.description or entry.description or entry.version,
                    applied.transactional, rollback)
    number = entry.number if entry.number is not None else 0
    up = SqlFile(location, entry.row.checksum or "", (0, 0), None)
    migration = Migration(entry.version, number, "", up, header)
    return PlanStep(migration, entry.row.version, down)
