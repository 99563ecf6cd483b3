"""Reading the migrations folder into Migration objects (DESIGN.md section 1).

Every problem in the folder is collected and reported at once, each with
its path (and line, for YAML and encoding errors), so one run shows the
whole list to fix. Nothing here touches a database.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, BinaryIO

from .checksums import checksum_of_normalised, normalise_sql_bytes
from .errors import MigrationFilesError, Problem
from .yamlfast import load_yaml, yaml_error_line, yaml_error_text

FOLDER_PATTERN = re.compile(r"(\d+)_([A-Za-z0-9][A-Za-z0-9_-]*)")
HEADER_FILE, UP_FILE, DOWN_FILE = "migration.yaml", "up.sql", "down.sql"
HEADER_KEYS = {"description": str, "transaction": bool}
CHANGED = "changed while sibila-sqlmig was running; run the command again"
_MISSING = "missing; every version folder needs migration.yaml, up.sql and down.sql"
# Small up.sql files are read once: discovery keeps the text it hashed, and that text
# is what runs. Larger ones (data migrations) are read again when they run, one at a
# time, so memory stays near the largest file.
SMALL_FILE = 64 * 1024
KEPT_TEXT_BUDGET = 16 * 1024 * 1024
_IGNORED_FOLDERS = frozenset({"__pycache__"})


Stamp = tuple[int, int]


def _stamp(stream: BinaryIO) -> Stamp:
    status = os.fstat(stream.fileno())
    return status.st_size, status.st_mtime_ns


class Migration:
    """One version folder. ``checksum`` is the normalised SHA-256 of up.sql.

    The header (migration.yaml, and the presence of down.sql) is read when first
    needed, or up front for many versions at once by ``load_headers``, which
    reports every problem together: a no-op ``migrate`` hashes each up.sql and
    reads nothing else of an applied version. A large up.sql is hashed when its
    checksum is first needed (for an applied version: when its state is
    worked out; for a pending one: by the runner, while it splits the file).
    """

    __slots__ = ("_checksum", "_header", "location", "number", "up_stamp", "up_text",
                 "version")

    def __init__(self, version: str, number: int, location: str, checksum: str | None,
                 up_stamp: Stamp, up_text: str | None = None,
                 header: dict[str, Any] | None = None) -> None:
        self.version = version
        self.number = number
        self.location = location  # the folder's path; a string, cheaper than a Path
        self.up_stamp = up_stamp  # size and mtime of up.sql when first read
        self.up_text = up_text  # the normalised text that was hashed, kept if small
        self._checksum = checksum
        self._header = header

    def __repr__(self) -> str:
        return f"Migration({self.version!r}, {self.location!r})"

    @property
    def checksum(self) -> str:
        """The normalised SHA-256 of up.sql (refused if the file changed since discovery)."""
        if self._checksum is None:
            data, stamp = read_sql_bytes(self.up_path)
            self.remember_checksum(stamp, checksum_of_normalised(data))
        assert self._checksum is not None
        return self._checksum

    @property
    def has_checksum(self) -> bool:
        """True once up.sql has been hashed (always for a small file)."""
        return self._checksum is not None

    def remember_checksum(self, stamp: Stamp, checksum: str) -> None:
        """Record the checksum of up.sql as read with ``stamp``."""
        if stamp != self.up_stamp:
            raise MigrationFilesError([Problem(self.up_path, CHANGED)])
        self._checksum = checksum

    @property
    def header(self) -> dict[str, Any]:
        """The validated migration.yaml; raises MigrationFilesError if it is invalid."""
        if self._header is None:
            load_headers([self])
        assert self._header is not None
        return self._header

    @property
    def description(self) -> str:
        return str(self.header["description"])

    @property
    def transaction(self) -> bool:
        return bool(self.header.get("transaction", True))

    @property
    def folder(self) -> Path:
        return Path(self.location)

    @property
    def up_path(self) -> Path:
        return self.folder / UP_FILE

    @property
    def down_path(self) -> Path:
        return self.folder / DOWN_FILE


def parse_version_folder(name: str) -> tuple[str, int] | None:
    """``("001", 1)`` for ``001_slug``; None when the name is not a version folder."""
    match = FOLDER_PATTERN.fullmatch(name)
    return (match.group(1), int(match.group(1))) if match else None


def discover(migrations_dir: Path, *, headers: bool = True) -> list[Migration]:
    """All versions in ``migrations_dir``, ordered by their integer version.

    Folder names, duplicate numbers and every up.sql are always checked; with
    ``headers`` every migration.yaml and down.sql too (else see load_headers).
    Raises MigrationFilesError listing every problem found.
    """
    problems: list[Problem] = []
    try:
        entries = sorted(os.scandir(migrations_dir), key=lambda entry: entry.name)
    except FileNotFoundError:
        raise MigrationFilesError([Problem(migrations_dir, (
            "the migrations folder does not exist; create it (sibila-sqlmig create "
            "\"Description\" does) or point --migrations / SIBILA_SQLMIG_MIGRATIONS at it"))]) \
            from None
    except NotADirectoryError:
        raise MigrationFilesError([Problem(migrations_dir, "is not a folder")]) from None
    by_number: dict[int, str] = {}
    migrations: list[Migration] = []
    budget = KEPT_TEXT_BUDGET
    for entry in entries:
        if entry.name.startswith(".") or entry.name in _IGNORED_FOLDERS or not entry.is_dir():
            continue  # README.md, .gitkeep and other files are documentation
        folder = entry.path
        parsed = parse_version_folder(entry.name)
        if parsed is None:
            problems.append(Problem(Path(folder), (
                "folder name does not match NNN_slug (digits, underscore, letters/digits/_-); "
                "rename it, or move it out of the migrations folder")))
            continue
        version, number = parsed
        if number in by_number:
            problems.append(Problem(Path(folder), (
                f"duplicate version {number}: {os.path.basename(by_number[number])} has the "
                "same number; "
                "renumber one of them")))
            continue
        by_number[number] = folder
        migration = _read_version(folder, version, number, problems)
        if migration is None:
            continue
        if migration.up_text is not None:
            if len(migration.up_text) <= budget:
                budget -= len(migration.up_text)
            else:
                migration.up_text = None  # past the budget: read again when it runs
        migrations.append(migration)
    if headers or problems:  # failing anyway: report the headers' problems too
        problems += _header_problems(migrations)
    if problems:
        raise MigrationFilesError(problems)
    migrations.sort(key=lambda migration: migration.number)
    return migrations


def load_headers(migrations: list[Migration]) -> None:
    """Read and validate the headers of ``migrations``, reporting every problem at once."""
    problems = _header_problems(migrations)
    if problems:
        raise MigrationFilesError(problems)


def _header_problems(migrations: list[Migration]) -> list[Problem]:
    problems: list[Problem] = []
    for migration in migrations:
        if migration._header is not None:
            continue
        folder = migration.location
        present = set(os.listdir(folder))
        for required in (HEADER_FILE, DOWN_FILE):
            if required not in present:
                problems.append(Problem(Path(folder, required), _MISSING))
        if HEADER_FILE in present:
            migration._header = _read_header(os.path.join(folder, HEADER_FILE), problems)
    return problems


def _read_version(folder: str, version: str, number: int,
                  problems: list[Problem]) -> Migration | None:
    # Plain strings: this runs for every version on every command, so it avoids
    # pathlib's per-join cost, and reads only up.sql (see Migration).
    up = _check_up_sql(os.path.join(folder, UP_FILE), problems)
    if up is None:
        present = set(os.listdir(folder))  # on this failure path, report the rest too
        problems += [Problem(Path(folder, name), _MISSING)
                     for name in (HEADER_FILE, DOWN_FILE) if name not in present]
        return None
    return Migration(version, number, folder, *up)


def _read_header(file: str, problems: list[Problem]) -> dict[str, Any] | None:
    text = _read_text(file, problems)
    if text is None:
        return None
    try:
        data = load_yaml(text)
    except Exception as error:  # yaml.YAMLError; PyYAML is imported only when needed
        problems.append(Problem(Path(file), f"invalid YAML: {yaml_error_text(error)}",
                                yaml_error_line(error)))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(Path(file), "must be a mapping such as 'description: Add users'"))
        return None
    found = len(problems)
    for key, value in data.items():
        expected = HEADER_KEYS.get(key) if isinstance(key, str) else None
        if expected is None:
            problems.append(Problem(Path(file), f"unknown key {key!r}; the keys are "
                                    f"{', '.join(HEADER_KEYS)} (check the spelling)"))
        elif not isinstance(value, expected):
            problems.append(Problem(Path(file), f"{key!r} must be a {expected.__name__}, "
                                    f"not {value!r}"))
    if "description" not in data:
        problems.append(Problem(Path(file), "missing the required key 'description'"))
    elif isinstance(data["description"], str) and not data["description"].strip():
        problems.append(Problem(Path(file), "'description' is empty"))
    return data if len(problems) == found else None


def _read_bytes(file: str) -> bytes:
    with open(file, "rb") as stream:
        return stream.read()


def _read_text(file: str, problems: list[Problem]) -> str | None:
    try:
        return decode_sql(file, normalise_sql_bytes(_read_bytes(file)))
    except _DecodeProblem as problem:
        problems.append(problem.problem)
    except OSError as error:
        problems.append(Problem(Path(file), f"cannot be read: {error.strerror}"))
    return None


def _check_up_sql(file: str,
                  problems: list[Problem]) -> tuple[str | None, Stamp, str | None] | None:
    """Checksum, stamp and text of a small up.sql, once it is UTF-8 and holds a statement.

    Of a large file only the beginning is read here: it is hashed when its checksum
    is needed, and decoded (so checked for UTF-8) when it is about to run.
    """
    try:
        with open(file, "rb") as stream:
            stamp = _stamp(stream)
            raw = stream.read(SMALL_FILE + 1)
            if len(raw) > SMALL_FILE and _ONLY_COMMENTS.fullmatch(normalise_sql_bytes(raw)):
                raw += stream.read()  # a long comment first: look at the whole file
        data = normalise_sql_bytes(raw)
        small = len(raw) <= SMALL_FILE
        text = decode_sql(file, data) if small else None
    except _DecodeProblem as problem:
        problems.append(problem.problem)
        return None
    except FileNotFoundError:
        problems.append(Problem(Path(file), _MISSING))
        return None
    except OSError as error:
        problems.append(Problem(Path(file), f"cannot be read: {error.strerror}"))
        return None
    if _ONLY_COMMENTS.fullmatch(data):
        problems.append(Problem(Path(file), "holds no SQL statement; write the change, or "
                                "delete the version folder"))
        return None
    return (checksum_of_normalised(data) if small else None), stamp, text


class _DecodeProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def decode_sql(path: Path | str, data: bytes) -> str:
    """Decode UTF-8 (a BOM is dropped); raises a Problem naming the line of a bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise _DecodeProblem(Problem(Path(path), f"is not UTF-8 text (byte {error.start}); save it "
                                     "as UTF-8", line)) from None


# Only whitespace, ";" and comments of every dialect: a cheap, dialect-free test that
# up.sql holds something; the splitter decides exactly.
_ONLY_COMMENTS = re.compile(rb"(?:\s|--[^\n]*|#[^\n]*|/\*.*?\*/|;)*", re.S)


def read_sql_bytes(path: Path) -> tuple[bytes, Stamp]:
    """The normalised bytes of a SQL file and its size and mtime, read from disk now."""
    with open(path, "rb") as stream:
        return normalise_sql_bytes(stream.read()), _stamp(stream)


def decode_sql_file(path: Path, data: bytes) -> str:
    """Decode normalised bytes read from ``path``; MigrationFilesError if not UTF-8."""
    try:
        return decode_sql(path, data)
    except _DecodeProblem as problem:
        raise MigrationFilesError([problem.problem]) from None


def read_sql(path: Path) -> tuple[str, Stamp]:
    """The normalised text of a SQL file and its size and mtime, read from disk now."""
    data, stamp = read_sql_bytes(path)
    return decode_sql_file(path, data), stamp
