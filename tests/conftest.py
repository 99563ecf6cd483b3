"""Shared fixtures: a scratch database per test on each engine, and helpers.

PostgreSQL and MariaDB/MySQL tests use the servers named by
SIBILA_SQLMIG_TEST_POSTGRES_URL and SIBILA_SQLMIG_TEST_MYSQL_URL. When a
server is unreachable its tests are skipped with a message saying how to
enable them, unless SIBILA_SQLMIG_TEST_REQUIRE names the engine
("postgresql,mysql"), in which case they fail: CI sets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sibila_sqlmig.cli import main

POSTGRES_URL = os.environ.get("SIBILA_SQLMIG_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("SIBILA_SQLMIG_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
REQUIRED = {name.strip() for name in os.environ.get("SIBILA_SQLMIG_TEST_REQUIRE", "").split(",")
            if name.strip()}
ENGINES = ("sqlite", "postgresql", "mysql")
ROOT = Path(__file__).resolve().parent.parent


def _unavailable(engine: str, reason: str) -> None:
    if engine in REQUIRED or "all" in REQUIRED:
        pytest.fail(f"{engine} tests are required (SIBILA_SQLMIG_TEST_REQUIRE) but cannot "
                    f"run: {reason}")
    variable = ("SIBILA_SQLMIG_TEST_POSTGRES_URL" if engine == "postgresql"
                else "SIBILA_SQLMIG_TEST_MYSQL_URL")
    pytest.skip(f"{engine} server unavailable ({reason}); start one and set {variable} "
                f"(and pip install '.[{'postgres' if engine == 'postgresql' else 'mysql'}]') "
                "to run these tests")


@dataclass
class ScratchDatabase:
    """A database of its own for one test."""

    engine: str
    url: str
    admin: Any = None  # a raw driver connection to the same database, for assertions

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query on the scratch database and return its rows."""
        cursor = self.admin.cursor()
        cursor.execute(sql)
        rows = [tuple(row) for row in cursor.fetchall()]
        cursor.close()
        return rows

    def tables(self) -> set[str]:
        if self.engine == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        elif self.engine == "postgresql":
            query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        else:
            query = "SELECT table_name FROM information_schema.tables WHERE table_schema = " \
                    "DATABASE()"
        return {row[0] for row in self.rows(query) if not row[0].startswith("sqlite_")}

    def versions(self, table: str = "schema_migrations") -> list[str]:
        return sorted(row[0] for row in self.rows(f"SELECT version FROM {table}"))


def _server_url(base: str, name: str) -> str:
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[ScratchDatabase]:
    import sqlite3

    path = tmp_path / "scratch.db"
    db = ScratchDatabase("sqlite", f"sqlite:///{path}")
    db.admin = sqlite3.connect(path, isolation_level=None)
    yield db
    db.admin.close()


class _Server:
    """One admin connection per engine for the whole session, or why there is none.

    The server is probed once: when it is down, every later test of that engine
    skips (or fails) at once with the same reason instead of waiting for its own
    connect timeout.
    """

    def __init__(self, engine: str, connect: Callable[[str | None], Any]) -> None:
        self.engine = engine
        self.connect = connect  # connect(database name or None for the server's default)
        self.connection: Any = None
        self.reason = ""
        try:
            self.connection = connect(None)
        except Exception as error:  # the driver's error, or ImportError
            self.reason = str(error).strip().splitlines()[0] if str(error).strip() else \
                type(error).__name__

    def admin(self) -> Any:
        if self.connection is None:
            _unavailable(self.engine, self.reason)
        return self.connection


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_Server]:
    def connect(database: str | None) -> Any:
        try:
            import psycopg
        except ImportError:
            raise ImportError("psycopg is not installed") from None
        url = _server_url(POSTGRES_URL, database) if database else POSTGRES_URL
        return psycopg.connect(url, autocommit=True, connect_timeout=5)

    server = _Server("postgresql", connect)
    yield server
    if server.connection is not None:
        server.connection.close()


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[_Server]:
    from sibila_sqlmig.config import parse_database_url

    parsed = parse_database_url(MYSQL_URL, base_dir=Path.cwd())

    def connect(database: str | None) -> Any:
        try:
            import pymysql
        except ImportError:
            raise ImportError("PyMySQL is not installed") from None
        return pymysql.connect(host=parsed.host, port=parsed.port or 3306,
                               user=parsed.user or "root", password=parsed.password,
                               database=database, autocommit=True, connect_timeout=5)

    server = _Server("mysql", connect)
    yield server
    if server.connection is not None:
        server.connection.close()


@pytest.fixture
def postgres_db(postgres_server: _Server) -> Iterator[ScratchDatabase]:
    admin = postgres_server.admin()
    name = f"sqlmig_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    db = ScratchDatabase("postgresql", _server_url(POSTGRES_URL, name),
                         postgres_server.connect(name))
    yield db
    db.admin.close()
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mysql_db(mysql_server: _Server) -> Iterator[ScratchDatabase]:
    admin = mysql_server.admin()
    name = f"sqlmig_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    db = ScratchDatabase("mysql", _server_url(MYSQL_URL, name), mysql_server.connect(name))
    yield db
    db.admin.close()
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(params=ENGINES)
def db(request: pytest.FixtureRequest) -> ScratchDatabase:
    """A scratch database on each engine in turn."""
    fixture = {"sqlite": "sqlite_db", "postgresql": "postgres_db", "mysql": "mysql_db"}
    return request.getfixturevalue(fixture[request.param])  # type: ignore[no-any-return]


def write_version(root: Path, name: str, up: str, down: str = "-- irreversible\n",
                  header: str | None = None, **keys: Any) -> Path:
    """Write one version folder; ``keys`` become header lines (description defaults)."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if header is None:
        lines = [f"description: {keys.pop('description', name.split('_', 1)[1])}"]
        lines += [f"{key}: {str(value).lower() if isinstance(value, bool) else value}"
                  for key, value in keys.items()]
        header = "\n".join(lines) + "\n"
    (folder / "migration.yaml").write_text(header, encoding="utf-8")
    (folder / "up.sql").write_text(up, encoding="utf-8")
    (folder / "down.sql").write_text(down, encoding="utf-8")
    return folder


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Any:
    """Run the CLI in-process with a migrations folder and a config-free working dir."""

    def run(*args: str) -> CliResult:
        argv = list(args)
        if "--config" not in argv:
            argv += ["--config", str(_empty_config(tmp_path))]
        code = main(argv)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def _empty_config(tmp_path: Path) -> Path:
    path = tmp_path / "empty_config.yaml"
    if not path.exists():
        path.write_text("# no settings: tests pass everything explicitly\n")
    return path


def run_module(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sibila_sqlmig`` in a child process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "sibila_sqlmig", *args], cwd=cwd or ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def run_on_terminal(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``python -m sibila_sqlmig`` with a pseudo-terminal as stdout and stderr; return
    what it wrote."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "sibila_sqlmig", *args], cwd=cwd,
                               stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode()


def check_statements(statements: Any, *, path: Path | str, dialect: str, transactional: bool,
                     text: str | None = None) -> Any:
    """What a run refuses in a file (prepare: ``lint.refusals`` of its findings); without
    ``text`` no ``-- sqlmig: allow`` comment is seen."""
    from sibila_sqlmig.lint import lint_file, refusals

    return refusals(lint_file(text or "", statements, path=str(path), dialect=dialect,
                              transactional=transactional, has_lock_timeout=True))
