"""The plain, immutable values that flow from the migrations folder to the engine.

    folder --discovery--> Migration --planner--> Plan --prepare--> PreparedFile --runner-->

No value here reads the disk or changes after it is made: the functions that
read (``discovery``, ``sqlfile``, ``prepare``) make new values. Where a value
leaves something unread, a field says so plainly (``Migration.header`` is None
until ``discovery.read_headers``; a large ``SqlFile`` keeps no text), never a
property that would read it on first use.
See docs/architecture.md for the whole picture.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import NamedTuple

UP, DOWN = "up", "down"  # the two directions a file runs in
HEADER_FILE, UP_FILE, DOWN_FILE = "migration.yaml", "up.sql", "down.sql"

Stamp = tuple[int, int]  # size and mtime (ns) of a file when it was read


class SqlFile(NamedTuple):
    """A SQL file as read once: its checksum, and its text when small enough to keep.

    ``text`` is the normalised text (BOM dropped, CRLF/CR made LF). A large file's
    text is not kept, so a run over many data files holds one file in memory at a
    time; ``sqlfile.read_text`` reads it again and refuses if ``stamp`` changed.
    """

    # Paths are kept as strings: a pathlib join costs about 3 us, 30 ms of a no-op
    # run over 10,000 versions (benchmarks W4); ``path`` gives the Path.
    location: str
    checksum: str  # lowercase hex SHA-256 of the normalised bytes (README: The tracking table)
    stamp: Stamp
    text: str | None

    @property
    def path(self) -> Path:
        return Path(self.location)


#: What rolling a version back means (migration.yaml ``rollback:``): run down.sql, only
#: delete the row (nothing to undo), or refuse.
ROLLBACK_SQL, ROLLBACK_NOOP, ROLLBACK_IRREVERSIBLE = "sql", "noop", "irreversible"
ROLLBACK_MODES = (ROLLBACK_SQL, ROLLBACK_NOOP, ROLLBACK_IRREVERSIBLE)


class Header(NamedTuple):
    """The validated migration.yaml of one version."""

    description: str
    transaction: bool = True
    rollback: str = ROLLBACK_SQL  # one of ROLLBACK_MODES
    # SQLite: PRAGMA foreign_keys for this file, set outside its transaction (False: the
    # table-rebuild procedure, with PRAGMA foreign_key_check before COMMIT); None: as is.
    foreign_keys: bool | None = None
    # Seconds a statement may wait for a lock, or run (0: no limit); None: the project's
    # default (sibila_sqlmig.yaml), else the engine's own setting.
    lock_timeout: float | None = None
    statement_timeout: float | None = None
    retries: int | None = None  # runs again after a lock timeout or deadlock


class Migration(NamedTuple):
    """One version folder.

    ``header`` is None when migration.yaml has not been read: ``migrate`` reads the
    headers of the versions it runs (``discovery.read_headers``), not of the ones
    already applied, whose up.sql is only hashed.
    """

    version: str  # as written in the folder name, e.g. "001"
    number: int  # the integer the versions are ordered and matched by
    location: str  # the folder (a string: see SqlFile)
    up: SqlFile
    header: Header | None = None
    written: bool = True  # False: up.sql holds no statement yet (only status and verify see one)

    @property
    def folder(self) -> Path:
        return Path(self.location)

    @property
    def up_path(self) -> Path:
        return self.up.path

    @property
    def down_path(self) -> Path:
        return self.folder / DOWN_FILE


class AppliedRow(NamedTuple):
    """One row of the tracking table."""

    version: str
    description: str | None
    applied_at: str | None
    checksum: str | None


class State(enum.StrEnum):
    """Where a version stands, as ``status`` reports it."""

    APPLIED = "applied"  # recorded, and up.sql matches the stored checksum
    PENDING = "pending"  # on disk, not recorded
    EDITED = "edited"  # recorded, but up.sql changed since
    MISSING = "missing"  # recorded, but its folder is gone
    UNVERIFIED = "unverified"  # recorded with a NULL checksum (Sibila's earlier system)


class VersionStatus(NamedTuple):
    """The state of one version, with its folder and its row where they exist."""

    version: str
    number: int | None
    state: State
    migration: Migration | None = None
    row: AppliedRow | None = None
    out_of_order: bool = False  # pending, but older than the newest applied version

    @property
    def description(self) -> str:
        """The header's description where it was read, else the tracking row's."""
        if self.migration is not None and self.migration.header is not None:
            return self.migration.header.description
        return (self.row.description if self.row else None) or ""

    @property
    def is_recorded(self) -> bool:
        return self.row is not None


class StatusReport(NamedTuple):
    """Every version known on disk or in the table, ordered by version."""

    entries: tuple[VersionStatus, ...]

    def having(self, state: State) -> list[VersionStatus]:
        return [entry for entry in self.entries if entry.state is state]

    @property
    def recorded(self) -> list[VersionStatus]:
        return [entry for entry in self.entries if entry.is_recorded]


class PlanStep(NamedTuple):
    """One file to run: the version, and its version as the tracking row spells it
    (a legacy row "1" is the folder "001"; rollback deletes the row as spelled).

    ``stored_down`` is the down.sql the journal kept when the version was applied,
    for the rollback of a version whose folder is gone (a branch switch).
    """

    migration: Migration
    row_version: str
    stored_down: SqlFile | None = None


class JournalEntry(NamedTuple):
    """One row of the journal: one run of one file (or a baseline or repair).

    ``sql`` is the text of the file that ran and ``down_sql`` the down.sql as it was
    when an up ran; each is None when the file was larger than the journal's cap
    (then only its checksum is kept) or, for ``down_sql``, on a down run.
    """

    id: int
    version: str
    direction: str
    description: str
    checksum: str | None  # of up.sql: what the tracking row holds
    sql: str | None
    sql_checksum: str | None
    down_sql: str | None
    down_checksum: str | None
    transactional: bool
    rollback: str
    file: str
    started_at: str
    seconds: float | None
    outcome: str
    error: str | None
    statements: int
    attempt: int
    host: str
    user: str
    tool_version: str


class Plan(NamedTuple):
    """What migrate (UP) or rollback (DOWN) will run, in order."""

    direction: str
    steps: tuple[PlanStep, ...]

    @property
    def numbers(self) -> list[int]:
        return [step.migration.number for step in self.steps]
