"""Settings: command-line option > environment > sibila_sqlmig.yaml > default.

Also the tracking table's name; database URLs are parsed in ``dburl``.
Nothing here touches a database.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .dburl import ENV_DATABASE
from .dburl import DatabaseURL as DatabaseURL  # re-exported: Settings holds one
from .dburl import parse_database_url as parse_database_url
from .errors import ConfigError
from .log import debug
from .model import Header

DEFAULT_DATABASE = "sqlite:///sibila.db"
DEFAULT_MIGRATIONS = "migrations"
DEFAULT_TABLE = "schema_migrations"
DEFAULT_LOCK_TIMEOUT = 60.0
DEFAULT_CONFIG_FILE = "sibila_sqlmig.yaml"
VERSION_STYLES = ("sequential", "timestamp")

ENV_DATABASE_URL = "DATABASE_URL"
ENV_MIGRATIONS = "SIBILA_SQLMIG_MIGRATIONS"
ENV_TABLE = "SIBILA_SQLMIG_TABLE"
ENV_LOCK_WAIT = "SIBILA_SQLMIG_LOCK_WAIT"
ENV_LOCK_TIMEOUT = "SIBILA_SQLMIG_LOCK_TIMEOUT"  # the older name of SIBILA_SQLMIG_LOCK_WAIT
ENV_WAIT = "SIBILA_SQLMIG_WAIT"
ENV_LOCK = "SIBILA_SQLMIG_LOCK"

_CONFIG_KEYS = ("database", "migrations", "table", "lock_wait", "version_style", "wait",
                "backup", "backup_keep", "sqlite_foreign_keys", "lock", "lock_lease",
                "lock_timeout", "statement_timeout", "retries", "dump")
DEFAULT_BACKUP_KEEP = 3
LOCK_KINDS = ("advisory", "table")
DEFAULT_LOCK_LEASE = 30.0
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# The tables beside the tracking table take its name plus a suffix; PostgreSQL cuts
# names at 63 bytes, so the tracking table's own name leaves room for the longest.
JOURNAL_SUFFIX = "_journal"
_TABLE_NAME_MAX = 63 - len(JOURNAL_SUFFIX)


class TableName(NamedTuple):
    """The tracking table's validated name, optionally schema-qualified."""

    name: str
    schema: str | None = None

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    @property
    def journal(self) -> TableName:
        """The journal beside this table: ``<name>_journal`` in the same schema."""
        return TableName(self.name + JOURNAL_SUFFIX, self.schema)

    @property
    def lock(self) -> TableName:
        """The lock table of ``lock: table``: ``<name>_lock`` in the same schema."""
        return TableName(self.name + "_lock", self.schema)


def parse_table_name(text: str) -> TableName:
    """Validate ``name`` or ``schema.name``: letters, digits and _, at most 63 for the
    schema and 55 for the name (its journal adds ``_journal``)."""
    parts = text.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise ConfigError(
            f"Invalid table name {text!r}: use letters, digits and underscores "
            "(not starting with a digit), optionally schema.table on PostgreSQL."
        )
    if len(parts[-1]) > _TABLE_NAME_MAX:
        raise ConfigError(
            f"Invalid table name {text!r}: at most {_TABLE_NAME_MAX} characters, so that "
            f"its journal ({parts[-1][:12]}...{JOURNAL_SUFFIX}) fits the engines' 63.")
    return TableName(parts[-1], parts[0] if len(parts) == 2 else None)


class FileDefaults(NamedTuple):
    """The defaults of each file's lock_timeout, statement_timeout and retries (None:
    the engine's own setting stays), which a migration.yaml overrides."""

    lock_timeout: float | None = None
    statement_timeout: float | None = None
    retries: int = 0

    def timeouts(self, header: Header) -> tuple[float | None, float | None]:
        """A file's lock_timeout and statement_timeout in seconds: its header's, else
        these defaults; None leaves the engine's own setting alone."""
        return (self.lock_timeout if header.lock_timeout is None else header.lock_timeout,
                self.statement_timeout if header.statement_timeout is None
                else header.statement_timeout)


class Settings(NamedTuple):
    """Everything a command needs to know where to work."""

    database: DatabaseURL
    migrations_dir: Path
    table: TableName = TableName(DEFAULT_TABLE)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    version_style: str = "sequential"
    config_file: Path | None = None
    wait: float = 0.0  # seconds to wait for the database to accept connections
    backup: bool = True  # SQLite: a backup before a run that changes the database file
    backup_keep: int = DEFAULT_BACKUP_KEEP  # SQLite: how many backups of a database to keep
    sqlite_foreign_keys: bool = False  # SQLite: enforce foreign keys (SQLite's default: off)
    lock_kind: str = "advisory"  # the migration lock: "advisory" (session) or "table"
    lock_lease: float = DEFAULT_LOCK_LEASE  # lock: table: a holder silent this long is dead
    # Project-wide defaults of the header keys lock_timeout, statement_timeout, retries.
    file_defaults: FileDefaults = FileDefaults()
    notices: tuple[str, ...] = ()  # what the configuration means that a user may not expect
    dump_file: Path | None = None  # a schema dump written after every migrate and rollback


def load_settings(
    *,
    database: str | None = None,
    migrations: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    table: str | None = None,
    lock_timeout: float | None = None,
    wait: float | None = None,
    backup: bool | None = None,
    lock_wait: float | None = None,
    lock: str | None = None,
    dump: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    relative_paths: bool = False,
) -> Settings:
    """Resolve the settings from explicit values, the environment and the config file.

    Relative paths given as options or in the environment are relative to ``cwd``;
    those written in a config file are relative to that file's folder, so the
    file works from any working directory. The migrations folder is absolute,
    so that a process may change its working folder afterwards; with
    ``relative_paths`` (the command line, which never does) one written
    relative stays relative, and messages show it as the user wrote it.
    """
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else cwd
    file_values, config_path = _read_config_file(config, here)
    if config_path is not None:
        debug(__name__, "config file %s", config_path)
    file_dir = config_path.parent if config_path else here

    def pick(option: Any, env_keys: tuple[str, ...], file_key: str,
             default: Any) -> tuple[Any, str, Path]:
        if option is not None:
            return option, "the command-line option", here
        for env_key in env_keys:
            if env.get(env_key):
                return env[env_key], f"${env_key}", here
        if file_key in file_values:
            return file_values[file_key], f"{config_path} key '{file_key}'", file_dir
        return default, "the default", here

    # DATABASE_URL (dbmate's and most hosting platforms' convention) is read in place of
    # the default: a project's own sibila_sqlmig.yaml must not be overridden by a
    # variable the platform set for something else.
    db_text, db_source, db_base = pick(database, (ENV_DATABASE,), "database", None)
    if db_text is None:
        db_text, db_source, db_base = pick(None, (ENV_DATABASE_URL,), "", DEFAULT_DATABASE)
    dir_text, _, dir_base = pick(migrations, (ENV_MIGRATIONS,), "migrations",
                                 DEFAULT_MIGRATIONS)
    table_text, _, _ = pick(table, (ENV_TABLE,), "table", DEFAULT_TABLE)
    # The migration lock's wait: --lock-wait, or --lock-timeout, its older name.
    timeout, timeout_source, _ = pick(lock_wait if lock_wait is not None else lock_timeout,
                                      (ENV_LOCK_WAIT, ENV_LOCK_TIMEOUT), "lock_wait",
                                      DEFAULT_LOCK_TIMEOUT)
    kind, kind_source, _ = pick(lock, (ENV_LOCK,), "lock", "advisory")
    if kind not in LOCK_KINDS:
        raise ConfigError(f"Invalid lock kind {kind!r} (from {kind_source}): give "
                          f"{' or '.join(LOCK_KINDS)}.")
    lease, lease_source, _ = pick(None, (), "lock_lease", DEFAULT_LOCK_LEASE)
    if isinstance(lease, (int, float)) and not isinstance(lease, bool) and 0 <= lease < 1:
        raise ConfigError(f"{config_path}: 'lock_lease' must be 1 second or more (the "
                          f"heartbeat renews it every third of it), not {lease!r}.")
    file_defaults = FileDefaults(
        _optional_seconds(file_values.get("lock_timeout"), config_path, "lock_timeout"),
        _optional_seconds(file_values.get("statement_timeout"), config_path,
                          "statement_timeout"),
        _retries(file_values.get("retries", 0), config_path))
    style, _, _ = pick(None, (), "version_style", "sequential")
    wait_value, wait_source, _ = pick(wait, (ENV_WAIT,), "wait", 0.0)
    backup_value, _, _ = pick(backup, (), "backup", True)
    keep, _, _ = pick(None, (), "backup_keep", DEFAULT_BACKUP_KEEP)
    foreign_keys, _, _ = pick(None, (), "sqlite_foreign_keys", False)
    for flag, key in ((backup_value, "backup"), (foreign_keys, "sqlite_foreign_keys")):
        if not isinstance(flag, bool):
            raise ConfigError(f"{config_path}: '{key}' must be true or false, not {flag!r}.")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ConfigError(f"{config_path}: 'backup_keep' must be a whole number of 1 or "
                          f"more, not {keep!r} (to take no backups, set 'backup: false').")
    dump_text, _, dump_base = pick(dump, (), "dump", None)
    for value, key in ((db_text, "database"), (dir_text, "migrations"), (table_text, "table"),
                       *(((dump_text, "dump"),) if dump_text else ())):
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"{config_path}: '{key}' must be a string.")
    return Settings(
        database=parse_database_url(str(db_text), base_dir=db_base, source=db_source),
        migrations_dir=_as_given(Path(dir_text), dir_base, here if relative_paths else None),
        table=parse_table_name(str(table_text)),
        lock_timeout=_parse_seconds(timeout, timeout_source, "lock timeout"),
        version_style=_parse_style(style, config_path),
        config_file=config_path,
        wait=_parse_seconds(wait_value, wait_source, "wait"),
        backup=backup_value,
        backup_keep=keep,
        sqlite_foreign_keys=foreign_keys,
        lock_kind=str(kind),
        lock_lease=_parse_seconds(lease, lease_source, "lock lease"),
        file_defaults=file_defaults,
        notices=_notices(file_values, config_path),
        dump_file=None if not dump_text else _as_given(
            Path(dump_text), dump_base, here if relative_paths else None),
    )


def _notices(file_values: Mapping[str, Any], config_path: Path | None) -> tuple[str, ...]:
    """Earlier releases read sibila_sqlmig.yaml's lock_timeout as the wait for the
    migration lock; it is now each statement's default lock timeout (lock_wait is the
    wait). Said until the file names lock_wait too, so that nobody is surprised."""
    if "lock_timeout" in file_values and "lock_wait" not in file_values:
        return (f"note: {config_path}: 'lock_timeout' is each statement's lock timeout "
                f"(since this release); the wait for another run's migration lock is "
                f"'lock_wait' (default {DEFAULT_LOCK_TIMEOUT:g} s). Add lock_wait to the "
                "file to keep the old meaning, and this note goes away.",)
    return ()


def _optional_seconds(value: Any, config_path: Path | None, key: str) -> float | None:
    """A yaml default of a header's timeout: None when not given."""
    if value is None:
        return None
    seconds = _parse_seconds(value, f"{config_path} key '{key}'", key)
    if seconds > 2_147_483:  # PostgreSQL's largest (2147483647 ms)
        raise ConfigError(f"{config_path}: '{key}' must be at most 2147483 seconds.")
    return seconds


def _retries(value: Any, config_path: Path | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ConfigError(f"{config_path}: 'retries' must be a whole number from 0 to 100, "
                          f"not {value!r}.")
    return value


def _as_given(path: Path, base: Path, working_dir: Path | None) -> Path:
    """``path`` (relative to ``base``), kept relative to the process's working folder
    when it was written relative and lies inside it, so that messages show
    ``migrations/002_x/up.sql`` as the user wrote it; an absolute path stays so."""
    joined = base / path
    if working_dir is not None and not path.is_absolute():
        with contextlib.suppress(ValueError):
            return joined.relative_to(working_dir)
    return joined


def _parse_seconds(value: Any, source: str, what: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not 0 <= seconds < float("inf"):
        raise ConfigError(f"Invalid {what} {value!r} (from {source}): "
                          "give a number of seconds, 0 or more.")
    return seconds


def _parse_style(value: Any, config_path: Path | None) -> str:
    if value not in VERSION_STYLES:
        raise ConfigError(f"{config_path}: 'version_style' must be one of "
                          f"{', '.join(VERSION_STYLES)}, not {value!r}.")
    return str(value)


def _find_upwards(start: Path) -> Path | None:
    """sibila_sqlmig.yaml in ``start`` or the nearest parent that has one (as git and
    ruff look for theirs), so the tool works from any subfolder of a project."""
    for folder in (start, *start.parents):
        candidate = folder / DEFAULT_CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def _read_config_file(config: str | os.PathLike[str] | None, cwd: Path) -> tuple[dict[str, Any],
                                                                             Path | None]:
    from .yamlfile import YamlProblem, read_mapping

    if config is None:
        found = _find_upwards(cwd)
        if found is None:
            return {}, None
        path = found
    else:
        path = cwd / Path(config)
        if not path.exists() or path.is_dir():
            raise ConfigError(f"Config file {path} does not exist. Check --config.")
    try:
        data = read_mapping(path)
    except YamlProblem as problem:
        where = f"{path}:{problem.line}" if problem.line else str(path)
        raise ConfigError(f"{where}: {problem.message}.") from None
    if data is None:
        return {}, path
    unknown = sorted(str(key) for key in data if key not in _CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; the keys are "
                          f"{', '.join(_CONFIG_KEYS)}.")
    return data, path
