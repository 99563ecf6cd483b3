"""Settings: command-line option > environment > sibila_sqlmig.yaml > default.

Also database URL parsing and redaction, and validation of the tracking
table's name. Nothing here touches a database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import ConfigError

DEFAULT_DATABASE = "sqlite:///sibila.db"
DEFAULT_MIGRATIONS = "migrations"
DEFAULT_TABLE = "schema_migrations"
DEFAULT_LOCK_TIMEOUT = 60.0
DEFAULT_CONFIG_FILE = "sibila_sqlmig.yaml"
VERSION_STYLES = ("sequential", "timestamp")

ENV_DATABASE = "SIBILA_SQLMIG_DATABASE"
ENV_MIGRATIONS = "SIBILA_SQLMIG_MIGRATIONS"
ENV_TABLE = "SIBILA_SQLMIG_TABLE"
ENV_LOCK_TIMEOUT = "SIBILA_SQLMIG_LOCK_TIMEOUT"

_SCHEMES = {
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
_CONFIG_KEYS = ("database", "migrations", "table", "lock_timeout", "version_style")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class DatabaseURL(NamedTuple):
    """A parsed database URL. ``str()`` and ``repr()`` never show the password."""

    dialect: str  # "sqlite", "postgresql" or "mysql"
    path: str = ""  # SQLite: file path or ":memory:"
    host: str = ""
    port: int | None = None
    user: str = ""
    password: str = ""
    database: str = ""
    query: tuple[tuple[str, str], ...] = ()
    source: str = ""  # where the URL came from, for error messages

    def redacted(self) -> str:
        """The URL for display, with any password replaced by ``***``."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.path}"
        auth = self.user + (":***" if self.password else "")
        host = self.host + (f":{self.port}" if self.port else "")
        query = "&".join(f"{key}={value}" for key, value in self.query)
        return f"{self.dialect}://{auth}{'@' if auth else ''}{host}/{self.database}" + (
            f"?{query}" if query else ""
        )

    def __str__(self) -> str:
        return self.redacted()

    def __repr__(self) -> str:
        return f"DatabaseURL({self.redacted()!r})"  # never the password


def parse_database_url(text: str, *, base_dir: Path, source: str = "") -> DatabaseURL:
    """Parse a database URL or a bare SQLite path; relative SQLite paths join ``base_dir``."""
    origin = f" (from {source})" if source else ""
    if "://" not in text:
        if not text.strip():
            raise ConfigError(f"The database URL{origin} is empty. Give a URL such as "
                              "sqlite:///sibila.db or postgresql://user@host/db.")
        return DatabaseURL("sqlite", path=_sqlite_path(text, base_dir), source=source)
    scheme = text.split("://", 1)[0].lower()
    dialect = _SCHEMES.get(scheme)
    if dialect is None:
        raise ConfigError(
            f"Unknown database URL scheme '{scheme}'{origin}. Use sqlite:///file.db, "
            "postgresql://user:pass@host:5432/db or mysql://user:pass@host:3306/db."
        )
    if dialect == "sqlite":
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs.db -> "/abs.db"
        rest = text.split("://", 1)[1]
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(f"Invalid SQLite URL{origin}: write sqlite:///relative.db "
                              "or sqlite:////absolute/path.db.")
        return DatabaseURL("sqlite", path=_sqlite_path(unquote(rest[1:]), base_dir),
                           source=source)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise ConfigError(f"Invalid database URL{origin}: {error}.") from None
    database = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not database:
        raise ConfigError(f"The database URL{origin} needs a host and a database name: "
                          f"{dialect}://user:pass@host:port/dbname.")
    return DatabaseURL(
        dialect,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=database,
        query=tuple(parse_qsl(parts.query)),
        source=source,
    )


def _sqlite_path(path: str, base_dir: Path) -> str:
    if path == ":memory:" or os.path.isabs(path):
        return path
    return str(base_dir / path)


class TableName(NamedTuple):
    """The tracking table's validated name, optionally schema-qualified."""

    name: str
    schema: str | None = None

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def parse_table_name(text: str) -> TableName:
    """Validate ``name`` or ``schema.name``: letters, digits and _, at most 63 each."""
    parts = text.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise ConfigError(
            f"Invalid table name {text!r}: use letters, digits and underscores "
            "(not starting with a digit), optionally schema.table on PostgreSQL."
        )
    return TableName(parts[-1], parts[0] if len(parts) == 2 else None)


class Settings(NamedTuple):
    """Everything a command needs to know where to work."""

    database: DatabaseURL
    migrations_dir: Path
    table: TableName = TableName(DEFAULT_TABLE)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    version_style: str = "sequential"
    config_file: Path | None = None


def load_settings(
    *,
    database: str | None = None,
    migrations: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    table: str | None = None,
    lock_timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve the settings from explicit values, the environment and the config file.

    Relative paths given as options or in the environment are relative to ``cwd``;
    those written in a config file are relative to that file's folder, so the
    file works from any working directory.
    """
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else cwd
    file_values, config_path = _read_config_file(config, here)
    file_dir = config_path.parent if config_path else here

    def pick(option: Any, env_key: str | None, file_key: str,
             default: Any) -> tuple[Any, str, Path]:
        if option is not None:
            return option, "the command-line option", here
        if env_key and env.get(env_key):
            return env[env_key], f"${env_key}", here
        if file_key in file_values:
            return file_values[file_key], f"{config_path} key '{file_key}'", file_dir
        return default, "the default", here

    db_text, db_source, db_base = pick(database, ENV_DATABASE, "database", DEFAULT_DATABASE)
    dir_text, _, dir_base = pick(migrations, ENV_MIGRATIONS, "migrations", DEFAULT_MIGRATIONS)
    table_text, _, _ = pick(table, ENV_TABLE, "table", DEFAULT_TABLE)
    timeout, timeout_source, _ = pick(lock_timeout, ENV_LOCK_TIMEOUT, "lock_timeout",
                                      DEFAULT_LOCK_TIMEOUT)
    style, _, _ = pick(None, None, "version_style", "sequential")
    for value, key in ((db_text, "database"), (dir_text, "migrations"), (table_text, "table")):
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"{config_path}: '{key}' must be a string.")
    return Settings(
        database=parse_database_url(str(db_text), base_dir=db_base, source=db_source),
        migrations_dir=dir_base / Path(dir_text),
        table=parse_table_name(str(table_text)),
        lock_timeout=_parse_timeout(timeout, timeout_source),
        version_style=_parse_style(style, config_path),
        config_file=config_path,
    )


def _parse_timeout(value: Any, source: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not seconds >= 0:
        raise ConfigError(f"Invalid lock timeout {value!r} (from {source}): "
                          "give a number of seconds, 0 or more.")
    return seconds


def _parse_style(value: Any, config_path: Path | None) -> str:
    if value not in VERSION_STYLES:
        raise ConfigError(f"{config_path}: 'version_style' must be one of "
                          f"{', '.join(VERSION_STYLES)}, not {value!r}.")
    return str(value)


def _read_config_file(config: str | os.PathLike[str] | None, cwd: Path) -> tuple[dict[str, Any],
                                                                             Path | None]:
    from .yamlfast import load_yaml, yaml_error_line, yaml_error_text

    if config is None:
        path = cwd / DEFAULT_CONFIG_FILE
        if not path.is_file():
            return {}, None
    else:
        path = cwd / Path(config)
        if not path.exists() or path.is_dir():
            raise ConfigError(f"Config file {path} does not exist. Check --config.")
    try:
        data = load_yaml(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8 text.") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file: {error.strerror}.") from None
    except Exception as error:  # yaml.YAMLError; PyYAML is imported lazily
        line = yaml_error_line(error)
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: invalid YAML: {yaml_error_text(error)}.") from None
    if data is None:
        return {}, path
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must be a mapping of keys "
                          f"({', '.join(_CONFIG_KEYS)}).")
    unknown = sorted(str(key) for key in data if key not in _CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; the keys are "
                          f"{', '.join(_CONFIG_KEYS)}.")
    return data, path
