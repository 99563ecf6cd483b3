"""The migrations folder -> Migration values (README: The format).

Every problem in the folder is collected and reported at once, each with
its path (and line, for YAML and encoding errors), so one run shows the
whole list to fix. Nothing here touches a database.

Two named steps read the disk: ``discover`` (folder names, every up.sql:
its checksum, and whether it holds a statement) and ``read_headers``
(migration.yaml and the presence of down.sql). ``migrate`` reads the
headers only of the versions it will run: an applied version's up.sql is
hashed, and nothing else of it can matter any more.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import MigrationFilesError, Problem
from .model import (
    DOWN_FILE,
    HEADER_FILE,
    ROLLBACK_MODES,
    ROLLBACK_SQL,
    UP_FILE,
    Header,
    Migration,
    SqlFile,
)
from .splitting import has_statement
from .sqlfile import MISSING, read_sql_file, read_text
from .yamlfile import YamlProblem, read_mapping

FOLDER_PATTERN = re.compile(r"(\d+)_([A-Za-z0-9][A-Za-z0-9_-]*)")
HEADER_KEYS: dict[str, type | tuple[type, ...]] = {
    "description": str, "transaction": bool, "rollback": str, "foreign_keys": bool,
    "lock_timeout": (int, float), "statement_timeout": (int, float), "retries": int}
# The text of small up.sql files is kept (it is what runs) up to this much in all.
KEPT_TEXT_BUDGET = 16 * 1024 * 1024
_IGNORED_FOLDERS = frozenset({"__pycache__"})
MAX_TIMEOUT = 2_147_483.0  # seconds: the largest timeout every engine takes
_KINDS = {str: "string", bool: "boolean (true or false)", int: "whole number"}


def parse_version_folder(name: str) -> tuple[str, int] | None:
    """``("001", 1)`` for ``001_slug``; None when the name is not a version folder."""
    match = FOLDER_PATTERN.fullmatch(name)
    return (match.group(1), int(match.group(1))) if match else None


def discover(migrations_dir: Path, dialect: str, *, headers: bool = True,
             unwritten_ok: bool = False) -> list[Migration]:
    """All versions in ``migrations_dir``, ordered by their integer version.

    Folder names, duplicate numbers and every up.sql (UTF-8, holds a statement of
    ``dialect``) are always checked; with ``headers`` every migration.yaml and
    down.sql too (else see ``read_headers``). With ``unwritten_ok`` (the read-only
    status and verify) an up.sql that holds no statement yet, as ``create`` leaves
    it, is kept and marked ``written=False`` instead of being a problem. Raises
    MigrationFilesError listing every problem found.
    """
    problems: list[Problem] = []
    by_number: dict[int, str] = {}
    migrations: list[Migration] = []
    budget = KEPT_TEXT_BUDGET
    for name, folder in _version_folders(migrations_dir, problems):
        parsed = parse_version_folder(name)
        if parsed is None:
            problems.append(Problem(Path(folder), (
                "folder name does not match NNN_slug (digits, underscore, letters/digits/_-); "
                "rename it, or move it out of the migrations folder")))
            continue
        version, number = parsed
        if number in by_number:
            problems.append(Problem(Path(folder), (
                f"duplicate version {number}: {os.path.basename(by_number[number])} has the "
                "same number; renumber one of them")))
            continue
        by_number[number] = folder
        found = _read_up_sql(folder, dialect, problems, unwritten_ok)
        if found is None:
            continue
        up, written = found
        if up.text is not None:
            if len(up.text) <= budget:
                budget -= len(up.text)
            else:  # past the budget: read again when it runs
                up = up._replace(text=None)
        header = _read_header(folder, problems) if headers else None
        migrations.append(Migration(version, number, folder, up, header, written))
    if problems and not headers:  # failing anyway: report the headers' problems too
        _with_headers(migrations, problems)
    if problems:
        raise MigrationFilesError(problems)
    migrations.sort(key=lambda migration: migration.number)
    return migrations


def read_headers(migrations: Sequence[Migration]) -> list[Migration]:
    """The same versions with their headers read; raises MigrationFilesError listing
    every problem of them at once."""
    problems: list[Problem] = []
    result = _with_headers(migrations, problems)
    if problems:
        raise MigrationFilesError(problems)
    return result


def _version_folders(migrations_dir: Path, problems: list[Problem]) -> list[tuple[str, str]]:
    """(name, path) of every folder in ``migrations_dir`` that may be a version, by name.

    Symbolic links are followed, so a linked version folder works; a link that
    loops or points nowhere is a problem, never a silent skip.
    """
    try:
        entries = sorted(os.scandir(migrations_dir), key=lambda entry: entry.name)
    except FileNotFoundError:
        raise MigrationFilesError([Problem(migrations_dir, (
            "the migrations folder does not exist; create it (sibila-sqlmig create "
            "\"Description\" does) or point --migrations / SIBILA_SQLMIG_MIGRATIONS at it"))]) \
            from None
    except NotADirectoryError:
        raise MigrationFilesError([Problem(migrations_dir, "is not a folder")]) from None
    except OSError as error:
        raise MigrationFilesError([Problem(migrations_dir,
                                           f"cannot be read: {error.strerror}")]) from None
    folders = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name in _IGNORED_FOLDERS:
            continue
        try:
            is_folder = entry.is_dir()  # follows a symbolic link
        except OSError as error:  # a link loop: ELOOP
            problems.append(Problem(Path(entry.path), (
                f"is a symbolic link that cannot be followed ({error.strerror}); fix or "
                "remove the link")))
            continue
        if is_folder:
            folders.append((entry.name, entry.path))
        elif entry.is_symlink() and not os.path.exists(entry.path):
            problems.append(Problem(Path(entry.path), (
                f"is a symbolic link to {os.readlink(entry.path)}, which does not exist; "
                "fix or remove the link")))
        # other files (README.md, .gitkeep) are documentation
    return folders


def _read_up_sql(folder: str, dialect: str, problems: list[Problem],
                 unwritten_ok: bool) -> tuple[SqlFile, bool] | None:
    """A version's up.sql, once it is readable UTF-8, and whether it holds a statement of
    ``dialect`` (one that does not is a problem unless ``unwritten_ok``)."""
    # Plain strings: this runs for every version on every command (see model.SqlFile).
    up_location = os.path.join(folder, UP_FILE)
    try:
        up, judged = read_sql_file(up_location)
        empty = not has_statement(judged, dialect) and (
            up.text is not None or not has_statement(read_text(up), dialect))
    except MigrationFilesError as error:
        problems += error.problems
        problems += _missing(folder, HEADER_FILE, DOWN_FILE)  # report the rest too
        return None
    if empty and not unwritten_ok:
        problems.append(Problem(Path(up_location), (
            f"holds no SQL statement for {dialect}; write the change, or delete the "
            "version folder")))
        return None
    return up, not empty


def _with_headers(migrations: Sequence[Migration], problems: list[Problem]) -> list[Migration]:
    """Each version with its header read (where it was not yet); problems noted."""
    result = []
    for migration in migrations:
        if migration.header is None:
            migration = migration._replace(header=_read_header(migration.location, problems))
        result.append(migration)
    return result


def _read_header(folder: str, problems: list[Problem]) -> Header | None:
    # Plain strings and no listdir: this runs for every version of status and verify.
    problems += _missing(folder, DOWN_FILE)
    location = os.path.join(folder, HEADER_FILE)
    try:
        data = read_mapping(location)
    except FileNotFoundError:
        problems.append(Problem(Path(location), MISSING))
        return None
    except YamlProblem as problem:
        problems.append(Problem(problem.path, problem.message, problem.line))
        return None
    return _validate_header(location, data or {}, problems)


def _missing(folder: str, *names: str) -> list[Problem]:
    """A problem for each of ``names`` that is not in ``folder``."""
    return [Problem(Path(folder, name), MISSING) for name in names
            if not os.path.exists(os.path.join(folder, name))]


def _validate_header(location: str, data: dict[str, Any],
                     problems: list[Problem]) -> Header | None:
    found = len(problems)

    def problem(message: str) -> None:
        problems.append(Problem(Path(location), message))  # a Path only when needed

    for key, value in data.items():
        expected = HEADER_KEYS.get(key)
        if expected is None:
            problem(f"unknown key {key!r}; the keys are {', '.join(HEADER_KEYS)} (check the "
                    "spelling)")
        elif key == "rollback" and isinstance(value, bool):  # YAML 1.1: no, off, false
            problem(f"'rollback' must be one of {', '.join(ROLLBACK_MODES)}; YAML read "
                    f"{_short(value)} as a boolean: write 'rollback: noop' for nothing to undo")
        elif not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            kind = "number of seconds" if isinstance(expected, tuple) else _KINDS[expected]
            problem(f"{key!r} must be a {kind}, not {_short(value)}")
        elif _out_of_range(key, data[key]):
            problem(f"{key!r} must be " + ("from 0 to 100" if key == "retries" else
                    f"from 0 to {MAX_TIMEOUT:.0f} seconds (0 means no limit)") +
                    f", not {_short(value)}")
    description = data.get("description")
    if "description" not in data:
        problem("missing the required key 'description'")
    elif isinstance(description, str) and not description.strip():
        problem("'description' is empty")
    rollback = data.get("rollback", ROLLBACK_SQL)
    if isinstance(rollback, str) and rollback not in ROLLBACK_MODES:
        problem(f"'rollback' must be one of {', '.join(ROLLBACK_MODES)}, not {_short(rollback)} "
                "(sql: run down.sql; noop: nothing to undo; irreversible: refuse)")
    if len(problems) > found:
        return None
    foreign_keys = data.get("foreign_keys")
    return Header(str(description), bool(data.get("transaction", True)), str(rollback),
                  None if foreign_keys is None else bool(foreign_keys),
                  _seconds(data.get("lock_timeout")), _seconds(data.get("statement_timeout")),
                  data.get("retries"))


def _out_of_range(key: str, value: Any) -> bool:
    if key == "retries":
        return not 0 <= value <= 100
    # PostgreSQL takes at most 2147483647 ms (about 24 days); infinity is no number.
    return key in ("lock_timeout", "statement_timeout") and not 0 <= value <= MAX_TIMEOUT


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


def _short(value: object) -> str:
    """A value as the user wrote it, cut short (a YAML value may be large)."""
    import reprlib

    return reprlib.repr(value)
