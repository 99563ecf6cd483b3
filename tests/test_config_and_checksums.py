"""Configuration precedence, URL parsing and redaction, and the checksum definition."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_on_terminal
from sibila_sqlmig.config import load_settings, parse_database_url, parse_table_name
from sibila_sqlmig.errors import ConfigError
from sibila_sqlmig.sqlfile import sql_checksum


def test_checksum_is_sha256sum_of_an_lf_file(tmp_path: Path) -> None:
    up = ROOT / "migrations" / "001_initial" / "up.sql"
    data = up.read_bytes()
    assert sql_checksum(data) == hashlib.sha256(data).hexdigest()
    printed = subprocess.run(["sha256sum", str(up)], capture_output=True, text=True, check=True)
    assert printed.stdout.split()[0] == sql_checksum(data)


def test_checksum_ignores_bom_and_line_endings_only() -> None:
    lf = b"CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\n"
    same = {sql_checksum(lf), sql_checksum(lf.replace(b"\n", b"\r\n")),
            sql_checksum(lf.replace(b"\n", b"\r")), sql_checksum(b"\xef\xbb\xbf" + lf)}
    assert len(same) == 1
    assert sql_checksum(lf + b" ") not in same  # any other change is an edit
    assert sql_checksum(lf.replace(b"a INT", b"a  INT")) not in same


def test_precedence_option_over_environment_over_file_over_default(tmp_path: Path) -> None:
    config = tmp_path / "sibila_sqlmig.yaml"
    config.write_text("database: sqlite:///from_file.db\nmigrations: file_migrations\n"
                      "table: file_table\nlock_wait: 7\nlock_timeout: 3\nretries: 2\n")
    env = {"SIBILA_SQLMIG_DATABASE": "sqlite:///from_env.db",
           "SIBILA_SQLMIG_MIGRATIONS": "env_migrations"}
    from_option = load_settings(database="sqlite:///from_option.db", environ=env, cwd=tmp_path)
    assert from_option.database.path == str(tmp_path / "from_option.db")
    assert from_option.migrations_dir == tmp_path / "env_migrations"
    assert from_option.table.name == "file_table" and from_option.lock_timeout == 7
    # lock_timeout in the file is each statement's default; lock_wait the migration lock's.
    assert from_option.file_defaults == (3.0, None, 2)
    assert load_settings(lock_timeout=9, environ={}, cwd=tmp_path).lock_timeout == 9
    assert load_settings(environ={"SIBILA_SQLMIG_LOCK_TIMEOUT": "8"},
                         cwd=tmp_path).lock_timeout == 8  # the older name of LOCK_WAIT
    from_file = load_settings(environ={}, cwd=tmp_path)
    assert from_file.database.path == str(tmp_path / "from_file.db")
    assert from_file.config_file == config
    platform = {"DATABASE_URL": "postgresql+psycopg2://app@db.internal/app"}
    assert load_settings(environ=platform, cwd=tmp_path).database.path == str(
        tmp_path / "from_file.db")  # the project's file wins over a platform's variable
    ours = load_settings(environ={**platform, **env}, cwd=tmp_path)
    assert ours.database.path == str(tmp_path / "from_env.db")
    config.unlink()
    platform = {"DATABASE_URL": "postgresql://app@db.internal/app"}
    assert load_settings(environ=platform, cwd=tmp_path).database.host == "db.internal"
    default = load_settings(environ={}, cwd=tmp_path)
    assert default.database.path == str(tmp_path / "sibila.db")
    assert default.migrations_dir == tmp_path / "migrations"
    assert default.table.name == "schema_migrations" and default.lock_timeout == 60


def test_config_file_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conf.yaml").write_text("database: data/app.db\nmigrations: sql\n")
    settings = load_settings(config=project / "conf.yaml", environ={}, cwd=tmp_path)
    assert settings.database.path == str(project / "data" / "app.db")
    assert settings.migrations_dir == project / "sql"


@pytest.mark.parametrize(
    ("url", "dialect", "shown"),
    [
        ("sqlite:////abs/x.db", "sqlite", "sqlite:////abs/x.db"),
        ("postgres://u:secret@db:6543/app?sslmode=require", "postgresql",
         "postgresql://u:***@db:6543/app?sslmode=require"),
        ("postgresql://u@db/app", "postgresql", "postgresql://u@db/app"),
        ("mariadb://root:p%40ss@127.0.0.1/app", "mysql", "mysql://root:***@127.0.0.1/app"),
    ],
)
def test_urls_parse_and_never_show_the_password(url: str, dialect: str, shown: str) -> None:
    parsed = parse_database_url(url, base_dir=Path("/base"))
    assert parsed.dialect == dialect
    assert str(parsed) == shown == parsed.redacted()
    assert "secret" not in repr(parsed) and "p@ss" not in repr(parsed)


def test_relative_and_bare_sqlite_paths() -> None:
    assert parse_database_url("sqlite:///rel.db", base_dir=Path("/b")).path == "/b/rel.db"
    assert parse_database_url("data/x.db", base_dir=Path("/b")).path == "/b/data/x.db"
    assert parse_database_url("sqlite:///:memory:", base_dir=Path("/b")).path == ":memory:"


@pytest.mark.parametrize("url", ["postgresql://host-only", "mysql://:5/db", "sqlite://x.db",
                                 "postgresql://h:notaport/db", ""])
def test_invalid_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_database_url(url, base_dir=Path("/b"))


def test_table_names_are_validated() -> None:
    assert str(parse_table_name("app.schema_migrations")) == "app.schema_migrations"
    for bad in ("1abc", "a-b", "a.b.c", "x; DROP TABLE y", "", "a" * 64, 'a"b'):
        with pytest.raises(ConfigError):
            parse_table_name(bad)


def test_missing_driver_names_the_extra(tmp_path: Path) -> None:
    script = ("import sys; sys.modules['psycopg'] = None; sys.modules['pymysql'] = None\n"
              "from sibila_sqlmig.cli import main\n"
              "sys.exit(main(sys.argv[1:]))")
    for url, extra in (("postgresql://u@h/db", "postgres"), ("mysql://u@h/db", "mysql")):
        result = subprocess.run([sys.executable, "-c", script, "status", "--database", url,
                                 "--migrations", str(ROOT / "migrations")], cwd=tmp_path,
                                capture_output=True, text=True, check=False)
        assert result.returncode == 2, result.stderr
        assert f"pip install 'sibila-sqlmig[{extra}]'" in result.stderr
        assert "Traceback" not in result.stderr


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path) -> None:
    import os

    migrations = ROOT / "migrations"
    args = ["status", "--database", str(tmp_path / "x.db"), "--migrations", str(migrations)]
    piped = subprocess.run([sys.executable, "-m", "sibila_sqlmig", *args], capture_output=True,
                           text=True, check=True, cwd=tmp_path)
    assert "\033[" not in piped.stdout
    for no_color, expect_colour in ((None, True), ("1", False)):
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        if no_color:
            env["NO_COLOR"] = no_color
        assert ("\033[" in run_on_terminal(args, tmp_path, env)) is expect_colour


def test_a_config_whose_lock_timeout_changed_meaning_gets_a_note(tmp_path: Path) -> None:
    """Earlier releases read sibila_sqlmig.yaml's lock_timeout as the migration lock's
    wait: say what it means now, until the file names lock_wait too."""
    config = tmp_path / "sibila_sqlmig.yaml"
    config.write_text("lock_timeout: 600\n")
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.lock_timeout == 60 and settings.file_defaults.lock_timeout == 600
    assert len(settings.notices) == 1 and "'lock_wait'" in settings.notices[0]
    config.write_text("lock_timeout: 600\nlock_wait: 600\n")
    assert load_settings(environ={}, cwd=tmp_path).notices == ()
