"""Command-line habits: what a newcomer sees on SQLite, the embedded default."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import write_version


def _args(tmp_path: Path, migrations: Path) -> list[str]:
    return ["--database", str(tmp_path / "db.sqlite"), "--migrations", str(migrations)]


def test_status_columns_line_up_with_an_out_of_order_version_and_quiet_keeps_them(
        cli, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    write_version(migrations, "003_three", "CREATE TABLE t3 (a INT);\n")
    args = _args(tmp_path, migrations)
    assert cli("migrate", *args).code == 0
    write_version(migrations, "002_two", "CREATE TABLE t2 (a INT);\n")
    lines = [line for line in cli("status", *args).out.splitlines() if line.startswith("  0")]
    assert len(lines) == 3
    description_at = {line.index(name) for line, name in zip(lines, ["one", "two", "three"],
                                                              strict=True)}
    assert len(description_at) == 1, lines  # one column, whatever the state's length
    quiet = cli("status", "-q", *args).out.splitlines()
    assert [line.split()[0] for line in quiet] == ["001", "002", "003"]


def test_repair_names_forget_missing_when_a_folder_is_gone(cli, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    gone = write_version(migrations, "002_two", "CREATE TABLE t2 (a INT);\n")
    args = _args(tmp_path, migrations)
    assert cli("migrate", *args).code == 0
    for file in gone.iterdir():
        file.unlink()
    gone.rmdir()
    result = cli("repair", *args)
    assert result.code == 0
    assert "applied but gone from the migrations folder: 002" in result.out
    assert "repair --forget-missing" in result.out


def test_an_unreachable_server_is_one_readable_message(cli, tmp_path: Path) -> None:
    result = cli("status", "--database", "postgresql://nobody@127.0.0.1:1/nothing",
                 "--migrations", str(tmp_path))
    assert result.code in (1, 2)  # 2 only where the driver is not installed
    if result.code == 1:
        assert "Cannot connect to postgresql://nobody@127.0.0.1:1/nothing: " in result.err
        assert " Check the URL" in result.err
        assert ".. " not in result.err and "?. " not in result.err
        assert "Traceback" not in result.err


def test_settings_work_before_and_after_the_command(tmp_path: Path) -> None:
    """dbmate and Flyway habits: ``sibila-sqlmig --database URL status`` (a real process)."""
    from conftest import run_module

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    database = tmp_path / "db.sqlite"
    before = run_module("--database", str(database), "-q", "migrate", "--migrations",
                        str(migrations), "--config", "/dev/null", cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    assert before.stdout == ""  # -q before the command is honoured
    after = run_module("status", "--database", str(database), "--migrations", str(migrations),
                       "--config", "/dev/null", cwd=tmp_path)
    assert "001      applied" in after.stdout
    both = run_module("--database", str(tmp_path / "other.db"), "status", "--database",
                      str(database), "--migrations", str(migrations), "--config",
                      "/dev/null", cwd=tmp_path)
    assert "001      applied" in both.stdout  # the one after the command wins


def test_database_url_stands_in_for_the_default(tmp_path: Path) -> None:
    from conftest import run_module

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'platform.db'}"}
    env_clean = {key: "" for key in ("SIBILA_SQLMIG_DATABASE",)}
    result = run_module("migrate", "--migrations", str(migrations), "--config", "/dev/null",
                        cwd=tmp_path, env={**env, **env_clean})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "platform.db").exists() and not (tmp_path / "sibila.db").exists()


def test_the_library_logs_like_a_library(tmp_path: Path, caplog) -> None:
    """INFO per version, DEBUG for the database, the lock and each statement; no handler."""
    import logging

    from sibila_sqlmig import Migrator

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one",
                  "CREATE TABLE t1 (a INT);\n\nINSERT INTO t1 VALUES (1);\n")
    with caplog.at_level(logging.DEBUG, logger="sibila_sqlmig"):
        Migrator(database=str(tmp_path / "db.sqlite"), migrations=migrations,
                 config="/dev/null").migrate()
    records = [(record.name, record.levelname, record.getMessage()) for record in caplog.records]
    assert records[-1][:2] == ("sibila_sqlmig.runner", "INFO")
    assert records[-1][2].startswith("applied 001 one (")
    messages = [message for _, _, message in records]
    assert any(message.startswith("database sqlite:///") for message in messages)
    assert "holding the migration lock" in messages
    assert any("001_one/up.sql:3: INSERT INTO t1 VALUES (1) (" in message
               for message in messages)
    # Only the NullHandler the logging documentation asks of a library.
    assert all(isinstance(handler, logging.NullHandler)
               for handler in logging.getLogger("sibila_sqlmig").handlers)


def test_verbose_shows_the_librarys_debug_lines(tmp_path: Path) -> None:
    from conftest import run_module

    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    result = run_module("migrate", "-v", "--database", str(tmp_path / "db.sqlite"),
                        "--migrations", str(migrations), "--config", "/dev/null", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sibila_sqlmig.runner: 001_one/up.sql:1: CREATE TABLE t1 (a INT)" \
        in result.stderr.replace(str(migrations) + "/", "")
    assert "sibila_sqlmig.api: holding the migration lock" in result.stderr


def test_the_config_file_is_found_from_a_subfolder(tmp_path: Path) -> None:
    """Run from src/app/, create and migrate still use the project's folder and database."""
    from conftest import run_module

    (tmp_path / "sibila_sqlmig.yaml").write_text("database: sqlite:///data/app.db\n"
                                                 "migrations: db/migrations\n")
    deep = tmp_path / "src" / "app"
    deep.mkdir(parents=True)
    created = run_module("create", "Add users", cwd=deep)
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "db" / "migrations" / "001_add_users").is_dir()
    assert not (deep / "migrations").exists()
    (tmp_path / "db" / "migrations" / "001_add_users" / "up.sql").write_text(
        "CREATE TABLE users (id INT);\n")
    migrated = run_module("migrate", "-v", cwd=deep)
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "data" / "app.db").exists()
    assert f"config file {tmp_path / 'sibila_sqlmig.yaml'}" in migrated.stderr


def test_paths_are_printed_as_given(tmp_path: Path) -> None:
    """Relative stays relative (create, the dry run's JSON, messages); absolute stays so."""
    import json

    from conftest import run_module

    settings = ["--config", "/dev/null", "--database", "db.sqlite"]
    created = run_module("create", "Add tags", *settings, cwd=tmp_path)
    assert created.stdout.startswith("created migrations/001_add_tags/"), created.stdout
    (tmp_path / "migrations" / "001_add_tags" / "up.sql").write_text("CREATE TABLE t (a INT);\n")
    plan = json.loads(run_module("migrate", "--dry-run", "--json", *settings,
                                 cwd=tmp_path).stdout)
    assert plan["migrations"][0]["file"] == "migrations/001_add_tags/up.sql"
    absolute = run_module("migrate", "--dry-run", "--json", *settings, "--migrations",
                          str(tmp_path / "migrations"), cwd=tmp_path)
    assert json.loads(absolute.stdout)["migrations"][0]["file"] == str(
        tmp_path / "migrations" / "001_add_tags" / "up.sql")


def test_a_long_file_shows_its_progress_on_a_terminal_only(tmp_path: Path) -> None:
    from conftest import run_module, run_on_terminal

    slow = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 200000) SELECT count(*) FROM c;\n")
    migrations = tmp_path / "migrations"
    # Twice the half second after which a file is drawn, so that a fast machine draws it.
    write_version(migrations, "001_slow", slow * 25)
    write_version(migrations, "002_quick", "CREATE TABLE t (a INT);\n")
    write_version(migrations, "003_fails", slow * 25 + "SELECT * FROM nope;\n")
    for name, quiet in (("tty.db", []), ("quiet.db", ["-q"])):
        shown = run_on_terminal(["migrate", *quiet, "--database", name, "--migrations",
                                     str(migrations), "--config", "/dev/null"], tmp_path)
        if quiet:
            assert re.search(r"statement \d+ of \d+", shown) is None
        else:
            assert "\r\x1b[K  001 slow: statement " in shown and " of 25 (" in shown
            assert "002 quick: statement" not in shown  # quick files never draw
            assert "applied\x1b[0m 001 slow" in shown or "applied 001 slow" in shown
            assert "003 fails: statement" in shown  # then the error, on a line of its own
            assert "s)error" not in shown and "s)\x1b[31merror" not in shown
    piped = run_module("migrate", "--database", "piped.db", "--migrations", str(migrations),
                       "--config", "/dev/null", cwd=tmp_path)
    assert piped.returncode == 1 and re.search(r"statement \d+ of \d+", piped.stdout) is None


def test_json_reports_bad_settings_too(tmp_path: Path) -> None:
    import json

    from conftest import run_module

    result = run_module("migrate", "--json", "--database", "oracle://x@y/z", "--migrations",
                        str(tmp_path), "--config", "/dev/null", cwd=tmp_path)
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["error"]["type"] == "ConfigError"


def test_the_python_api_keeps_working_after_a_change_of_folder(
        tmp_path: Path, monkeypatch) -> None:
    """A relative migrations folder is resolved when the Migrator is made (a daemon
    that chdirs to / afterwards must still find it)."""
    from sibila_sqlmig import Migrator

    write_version(tmp_path / "migrations", "001_one", "CREATE TABLE t1 (a INT);\n")
    monkeypatch.chdir(tmp_path)
    migrator = Migrator(database=str(tmp_path / "db.sqlite"), migrations="migrations",
                        config="/dev/null")
    monkeypatch.chdir("/")
    assert [step.version for step in migrator.migrate().steps] == ["001"]
    assert migrator.create("Next").is_absolute()


def test_status_right_after_create_shows_the_new_version(tmp_path: Path) -> None:
    """create leaves an up.sql of comments: status and verify show it, migrate refuses it."""
    from conftest import run_module

    settings = ["--config", "/dev/null", "--database", "db.sqlite"]
    assert run_module("create", "Add tags", *settings, cwd=tmp_path).returncode == 0
    status = run_module("status", *settings, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "001      pending" in status.stdout
    assert "001: migrations/001_add_tags/up.sql holds no SQL statement yet" in status.stdout
    assert run_module("verify", "--allow-empty", *settings, cwd=tmp_path).returncode == 0
    migrate = run_module("migrate", *settings, cwd=tmp_path)
    assert migrate.returncode == 2 and "holds no SQL statement for sqlite" in migrate.stderr


def test_json_errors_name_the_file_of_a_file_changed_mid_run() -> None:
    from sibila_sqlmig.cli import _error_dict
    from sibila_sqlmig.errors import FileChangedError, Problem

    error = FileChangedError(Problem(Path("m/002_big/up.sql"), "changed"), ["001"])
    found = _error_dict(error)
    assert found["file"] == "m/002_big/up.sql" and found["exit_code"] == 1
    assert "This run had already applied or rolled back: 001." in found["message"]


def test_the_pre_commit_hook_checks_a_folder_without_a_database(tmp_path: Path) -> None:
    """The hook's entry, run as pre-commit runs it (a shell-free split of its words)."""
    import shlex
    import subprocess
    import sys

    import yaml

    from conftest import ROOT

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    [hook] = [hook for hook in hooks if hook["id"] == "sibila-sqlmig-check"]
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    program, *args = shlex.split(hook["entry"])
    assert program == "sibila-sqlmig"
    command = [sys.executable, "-m", "sibila_sqlmig", *args]
    migrations = tmp_path / "migrations"
    write_version(migrations, "001_one", "CREATE TABLE t1 (a INT);\n")
    good = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stderr
    (migrations / "002-typo").mkdir()
    bad = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "002-typo: folder name does not match" in bad.stderr
    assert not list(tmp_path.glob("*.db")) and not (tmp_path / ":memory:").exists()
