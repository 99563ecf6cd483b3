"""Backups of a SQLite database file before a run, their rotation, and restore.

A backup lies next to the database, one self-contained SQLite file (never WAL) named
``<file name>.<UTC time>.before-<up|down|restore>[-<first>[-<last>]].sqlite-backup``,
e.g. ``app.db.20240501T120000123456Z.before-up-003-007.sqlite-backup``. The full file
name leads (not the stem), so ``app.db`` and ``app.sqlite`` never rotate away each
other's backups; the time (to the microsecond) sorts them. ``before-restore`` marks
the safety backup a restore takes of the database it overwrites.

Every copy goes through SQLite's backup API: it reads one consistent snapshot (the
committed data, the write-ahead log included) while other connections read or write.
``keep`` must be at least 1; not backing up at all is the caller's decision.
"""

from __future__ import annotations

import contextlib
import filecmp
import glob
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from .errors import DatabaseError, SqlmigError, UsageError

SUFFIX = ".sqlite-backup"
_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_DIRECTIONS = ("up", "down", "restore")
_PARTIAL_MAX_AGE = 3600.0  # seconds: a temporary copy older than this was left by a killed run
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED, as the backup progress callback sees them


class NothingToRestore(SqlmigError):
    """No backup of the database was found (exit 1, as "nothing to roll back")."""


class BackupInfo(NamedTuple):
    """One backup of a database: its file, when it was taken, before what."""

    path: Path
    taken_at: datetime  # UTC
    direction: str  # "up", "down" or "restore"
    versions: str  # "003-007", "003", or "" (a restore's safety backup)


class RestoreResult(NamedTuple):
    """What a restore put back; the safety backup is None when there was no database."""

    restored_from: Path
    safety_backup: Path | None


def should_back_up(database_path: str | Path) -> bool:
    """False for an in-memory database and a file that does not exist yet (nothing to lose)."""
    return not _in_memory(database_path) and os.path.isfile(database_path)


def take_backup(database_path: str | Path, *, versions: Sequence[str], direction: str,
                keep: int, now: datetime | None = None, timeout: float = 30.0,
                still_before: Callable[[Path], bool] | None = None) -> Path | None:
    """Back up the database next to it, then keep only its ``keep`` newest backups.

    ``versions`` are those the run will apply (``direction="up"``) or roll back
    (``"down"``); the name carries the first and the last. ``now`` (default: the
    current time; a naive value is local time) dates it. Waits about ``timeout``
    seconds at most for another connection's lock. Returns the new backup's path, or
    that of a backup already there before the same versions with the same bytes (the
    copy is then deleted, so that a deploy's workers do not each keep one); None when
    ``still_before(path)`` says the copy no longer shows the database before the run
    (another process changed it meanwhile): that copy is deleted, and nothing is
    rotated away for it.
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {_DIRECTIONS}, not {direction!r}")
    if not all(re.fullmatch(r"\d+", version) for version in versions):
        raise ValueError(f"versions must be version numbers (digits): {versions!r}")
    _check_keep(keep)
    database = Path(database_path)
    made = _write_backup(database, direction, versions, now or datetime.now(UTC), timeout,
                         still_before=still_before, one_of_identical=True)
    if made is None:
        return None
    _rotate(database, keep, protect={made})
    return made


def list_backups(database_path: str | Path) -> list[BackupInfo]:
    """The backups of this database (by the exact naming pattern), newest first."""
    database = Path(database_path)
    pattern = re.compile(re.escape(database.name) + r"\.(\d{8}T\d{12}Z)\.before-"
                         r"(up|down|restore)(?:-(\d+(?:-\d+)?))?" + re.escape(SUFFIX))
    found = []
    with contextlib.suppress(FileNotFoundError), os.scandir(database.parent) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match and entry.is_file():
                taken = datetime.strptime(match[1], _TIME_FORMAT).replace(tzinfo=UTC)
                found.append(BackupInfo(Path(entry.path), taken, match[2], match[3] or ""))
    return sorted(found, key=lambda info: (info.taken_at, info.path.name), reverse=True)


def restore_backup(database_path: str | Path, backup: str | Path | None = None, *,
                   keep: int, timeout: float = 30.0) -> RestoreResult:
    """Put a backup back into the database, after a safety backup of the database.

    Without ``backup``, the newest backup taken before a migrate or rollback is used,
    not a restore's safety backup (restoring twice must not undo the first restore);
    give a safety backup's path to return to the state before a restore. Rotation
    spares the backup restored and the safety backup, even with keep=1.
    """
    if _in_memory(database_path):
        raise UsageError("an in-memory database has no backups to restore.")
    _check_keep(keep)
    database = Path(database_path)
    if backup is None:
        runs = [info for info in list_backups(database) if info.direction != "restore"]
        if not runs:
            raise NothingToRestore(f"no backup of {database.name} found in "
                             f"{database.parent.absolute()}: nothing to restore. Give the "
                             "backup file to restore, or check the database path.")
        backup = runs[0].path
    backup = Path(backup)
    _check_is_database(backup)
    if database.exists() and backup.resolve() == database.resolve():
        raise UsageError(f"{backup} is the database itself; give a backup file.")
    safety = None
    if should_back_up(database):  # a deleted database can be restored: nothing to save
        safety = _write_backup(database, "restore", (), datetime.now(UTC), timeout)
        assert safety is not None  # nothing to ask about: always written
    # The backup API, not a file copy: other connections see the old or the restored
    # database, never a mix, and SQLite's locks and caches stay right.
    try:
        _copy(backup, database, timeout, modes=("ro", "rwc"))
    except BaseException:
        if safety is not None:  # nothing was restored: the safety copy saves nothing
            with contextlib.suppress(OSError):
                safety.unlink()
        raise
    _rotate(database, keep, protect={backup, *([safety] if safety else [])})
    return RestoreResult(backup, safety)


def _in_memory(database_path: str | Path) -> bool:
    name = str(database_path)  # before Path(): Path("") is "."
    return name in ("", ":memory:") or name.startswith("file::memory:")


def _check_keep(keep: int) -> None:
    if keep < 1:
        raise UsageError("keep at least 1 backup (to take none, do not back up).",
                         argument="keep", value=keep)


def _check_is_database(path: Path) -> None:
    """Refuse a missing, foreign or damaged backup before anything is overwritten."""
    problem = None
    try:
        with open(path, "rb") as file:
            if file.read(16) != b"SQLite format 3\x00":
                problem = "is not a SQLite database"
    except OSError as error:
        problem = f"cannot be read ({error.strerror})"
    if problem is None:
        with contextlib.closing(open_database(path, "ro", 5.0)) as connection:
            try:
                rows = connection.execute("PRAGMA quick_check").fetchall()
            except sqlite3.Error as error:
                rows = [(str(error),)]
            if rows != [("ok",)]:
                problem = f"is damaged ({'; '.join(str(row[0]) for row in rows[:3])})"
    if problem:
        raise UsageError(f"the backup {path} {problem}; nothing was restored. Give another "
                         f"backup file (those of the database end in {SUFFIX}).")


def _write_backup(database: Path, direction: str, versions: Sequence[str], now: datetime,
                  timeout: float, *, still_before: Callable[[Path], bool] | None = None,
                  one_of_identical: bool = False) -> Path | None:
    """Copy the database under a temporary name, ask ``still_before`` about that copy,
    then give it its backup name; None (and no file) when ``still_before`` says no.
    With ``one_of_identical``, a backup before the same versions with the same bytes is
    returned instead of a new one.

    Runs started together each take a backup, and each rotates the others' away: a
    copy is only named as a backup once it has been checked, so no rotation can
    delete it while it is being checked, and a name is claimed without replacing
    the backup of a run that took the same microsecond.
    """
    label = "".join(f"-{version}" for version in dict.fromkeys([*versions[:1], *versions[-1:]]))
    temporary = None
    try:
        # A temporary name outside the pattern, renamed when complete: a crash never
        # leaves a half backup that rotation or restore would take for a real one.
        handle, temporary = tempfile.mkstemp(dir=database.parent, suffix=".partial",
                                             prefix=f".{database.name}.")
        os.close(handle)
        with contextlib.suppress(OSError):  # where the filesystem allows it
            os.chmod(temporary, os.stat(database).st_mode & 0o7777)
        _copy(database, Path(temporary), timeout, modes=("rw", "rw"), standalone=True)
        if still_before is not None and not still_before(Path(temporary)):
            return None
        kind = f".before-{direction}{label}"
        if one_of_identical:
            same = _identical_backup(database, kind, Path(temporary))
            if same is not None:
                return same
        final = _claim_name(Path(temporary), database, kind, now.astimezone(UTC))
        if os.name == "posix":  # the rename itself durable too (SQLite synced the data)
            folder = os.open(database.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except OSError as error:
        raise DatabaseError(f"Cannot write a backup of {database} in {database.parent}: "
                            f"{error.strerror or error}. Check the free space and that the "
                            "folder is writable, or run without a backup (--no-backup, or "
                            "'backup: false' in sibila_sqlmig.yaml).") from None
    except DatabaseError as error:
        raise DatabaseError(f"Cannot back up {database} before the run: {error} (To run "
                            "without a backup: --no-backup, or 'backup: false' in "
                            "sibila_sqlmig.yaml.)") from None
    finally:
        for leftover in ([temporary, temporary + "-journal"] if temporary else []):
            # Windows refuses to unlink a file another process has open (the backup
            # it is linked to, being compared): a later rotation sweeps it.
            with contextlib.suppress(OSError):
                os.unlink(leftover)
    return final


def _identical_backup(database: Path, kind: str, copy: Path) -> Path | None:
    """A backup before the same versions (``kind``: ``.before-up-003-007``) with the same
    bytes as ``copy``, or None.

    Workers started together each copy the same database: kept all, their copies would
    rotate the backups of earlier deploys away. A copy identical to a backup already
    there is not kept. Nothing is deleted here, so no run can lose the backup it names;
    workers that copy at the same instant may still each keep one.
    """
    size = copy.stat().st_size
    for info in list_backups(database):
        if not info.path.name.endswith(kind + SUFFIX):
            continue
        with contextlib.suppress(FileNotFoundError):  # another run rotated it meanwhile
            if info.path.stat().st_size == size and filecmp.cmp(info.path, copy,
                                                                shallow=False):
                return info.path
    return None


def _claim_name(copy: Path, database: Path, kind: str, taken: datetime) -> Path:
    """Link ``copy`` to the first free backup name from ``taken`` on (a backup taken
    in the same microsecond by another run moves this one on by a microsecond)."""
    while True:
        final = database.parent / f"{database.name}.{taken.strftime(_TIME_FORMAT)}{kind}{SUFFIX}"
        try:
            os.link(copy, final)  # fails if the name is taken, where a rename replaces
            return final
        except FileExistsError:
            pass
        except OSError:  # no hard links (FAT, some network shares): check, then rename,
            # which two runs in one microsecond could still race on
            if not final.exists():
                os.replace(copy, final)
                return final
        taken += timedelta(microseconds=1)


def _copy(source: Path, target: Path, timeout: float, *, modes: tuple[str, str],
          standalone: bool = False) -> None:
    """Copy one SQLite file into another through the backup API, in one step.

    ``modes`` open the source and the target (``ro``, ``rw``, ``rwc``): a database is
    read ``rw``, since a read-only connection to a WAL database leaves -wal and -shm.
    """
    deadline = time.monotonic() + timeout

    def give_up_when_late(status: int, remaining: int, total: int) -> None:
        # Connection.backup retries a busy step for ever; stop at the deadline instead.
        if status in _BUSY_CODES and time.monotonic() > deadline:
            raise TimeoutError

    try:
        with contextlib.closing(open_database(source, modes[0], timeout)) as src, \
             contextlib.closing(open_database(target, modes[1], timeout)) as dst:
            # pages=-1: one step under one read lock is one snapshot; a stepped copy
            # starts over whenever another connection writes between steps.
            src.backup(dst, pages=-1, progress=give_up_when_late, sleep=0.05)
            if standalone:  # a WAL database's copy is WAL too: it would need -wal, -shm
                dst.execute("PRAGMA journal_mode = DELETE").fetchall()
    except TimeoutError:
        raise DatabaseError(f"Cannot copy {source} to {target}: another connection kept "
                            f"it locked for over {timeout:g} seconds. Try again when it "
                            "is done.") from None
    except sqlite3.Error as error:
        raise DatabaseError(f"Cannot copy {source} to {target}: {error}. Check that both "
                            "are SQLite files you may read and write (a damaged database: "
                            "move it aside and restore again).") from None


def _rotate(database: Path, keep: int, *, protect: set[Path]) -> None:
    """Delete this database's backups beyond the ``keep`` newest (never ``protect``),
    and the temporary copies of backups that a killed run left over an hour ago.

    The backups of runs and a restore's safety copies are counted apart: restoring a
    few times must not push out the backups taken before migrations. A file that
    cannot be deleted now (open elsewhere, on Windows) is left for a later rotation.
    """
    protected = {path.absolute() for path in protect}
    backups = list_backups(database)
    stale = [path for path in database.parent.glob(f".{glob.escape(database.name)}.*.partial*")
             if _older_than(path, _PARTIAL_MAX_AGE)]
    for kind in (("up", "down"), ("restore",)):
        for old in [info for info in backups if info.direction in kind][keep:]:
            if old.path.absolute() not in protected:
                stale.append(old.path)
    for path in stale:
        with contextlib.suppress(OSError):  # another run rotated it first, or it is in use
            path.unlink()


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def open_database(path: Path, mode: str, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` in ``mode`` (``ro``, ``rw``, ``rwc``)."""
    # A URI, so that "ro" and "rw" never create a file; as_uri() escapes "?" and "#".
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode={mode}", uri=True,
                           timeout=timeout)
