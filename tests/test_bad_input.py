"""Bad input: each is exit 2, one clear message naming the path, the database untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_module, write_version


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    write_version(folder, "001_good", "CREATE TABLE good (a INT);\n")
    return folder


def _migrate(cli, tmp_path: Path, migrations: Path, *extra: str):
    database = tmp_path / "db.sqlite"
    result = cli("migrate", "--database", f"sqlite:///{database}", "--migrations",
                 str(migrations), *extra)
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert not database.exists(), "the database must be untouched"
    return result.err


@pytest.mark.parametrize(
    ("name", "files", "expected"),
    [
        ("002-typo", None, "002-typo: folder name does not match NNN_slug"),
        ("002_missing_up", {"migration.yaml": "description: x\n", "down.sql": ""},
         "002_missing_up/up.sql: missing"),
        ("002_missing_down", {"migration.yaml": "description: x\n", "up.sql": "SELECT 1;"},
         "002_missing_down/down.sql: missing"),
        ("002_missing_header", {"up.sql": "SELECT 1;", "down.sql": ""},
         "002_missing_header/migration.yaml: missing"),
        ("002_yaml_syntax", {"migration.yaml": "description: x\ntransaction: [true\n",
                             "up.sql": "SELECT 1;", "down.sql": ""},
         "002_yaml_syntax/migration.yaml:3: invalid YAML"),
        ("002_not_mapping", {"migration.yaml": "- a list\n", "up.sql": "SELECT 1;",
                             "down.sql": ""},
         "002_not_mapping/migration.yaml: must be a mapping"),
        ("002_no_description", {"migration.yaml": "transaction: true\n", "up.sql": "SELECT 1;",
                                "down.sql": ""},
         "missing the required key 'description'"),
        ("002_unknown_key", {"migration.yaml": "description: x\ntransation: false\n",
                             "up.sql": "SELECT 1;", "down.sql": ""},
         "unknown key 'transation'"),
        ("002_wrong_type", {"migration.yaml": 'description: x\ntransaction: "yes"\n',
                            "up.sql": "SELECT 1;", "down.sql": ""},
         "'transaction' must be a boolean (true or false), not 'yes'"),
        ("002_empty_up", {"migration.yaml": "description: x\n",
                          "up.sql": "-- nothing yet\n/* still nothing */\n", "down.sql": ""},
         "002_empty_up/up.sql: holds no SQL statement"),
    ],
)
def test_invalid_version_folder(cli, tmp_path: Path, migrations: Path, name: str,
                                files: dict[str, str] | None, expected: str) -> None:
    folder = migrations / name
    folder.mkdir()
    for file_name, text in (files or {}).items():
        (folder / file_name).write_text(text)
    assert expected in _migrate(cli, tmp_path, migrations)


def test_up_sql_not_utf8_names_the_line(cli, tmp_path: Path, migrations: Path) -> None:
    folder = write_version(migrations, "002_latin1", "SELECT 1;\n")
    (folder / "up.sql").write_bytes(b"SELECT 1;\nSELECT 'caf\xe9';\n")
    assert "002_latin1/up.sql:2: is not UTF-8 text" in _migrate(cli, tmp_path, migrations)


def test_duplicate_version_numbers(cli, tmp_path: Path, migrations: Path) -> None:
    write_version(migrations, "1_a", "SELECT 1;\n")
    message = _migrate(cli, tmp_path, migrations)
    assert "duplicate version 1: 001_good has the same number" in message


def test_every_problem_is_reported_in_one_run(cli, tmp_path: Path, migrations: Path) -> None:
    (migrations / "oops").mkdir()
    write_version(migrations, "002_a", "SELECT 1;\n", header="descriptio: x\n")
    write_version(migrations, "003_b", "-- empty\n")
    message = _migrate(cli, tmp_path, migrations)
    assert message.count("\n  ") >= 4
    assert "oops" in message and "descriptio" in message and "003_b/up.sql" in message
    assert "problems in the migrations folder; the database was not changed" in message


def test_missing_migrations_folder(cli, tmp_path: Path) -> None:
    message = _migrate(cli, tmp_path, tmp_path / "nowhere")
    assert "nowhere: the migrations folder does not exist" in message


def test_unknown_url_scheme(cli, tmp_path: Path, migrations: Path) -> None:
    result = cli("status", "--database", "oracle://scott@db/orcl", "--migrations",
                 str(migrations))
    assert result.code == 2
    assert "Unknown database URL scheme 'oracle'" in result.err


def test_files_and_hidden_entries_are_ignored(cli, tmp_path: Path, migrations: Path) -> None:
    (migrations / "README.md").write_text("# our migrations\n")
    (migrations / ".gitkeep").write_text("")
    (migrations / ".drafts").mkdir()
    result = cli("migrate", "--database", str(tmp_path / "db.sqlite"), "--migrations",
                 str(migrations))
    assert result.code == 0, result.err
    assert "applied 001" in result.out


def test_bad_usage_is_exit_2_without_traceback(tmp_path: Path) -> None:
    for args in (["migrate", "--steps", "1"], ["rollback", "--steps", "x"], ["nonsense"],
                 ["rollback", "--steps", "1", "--to", "2"], ["migrate", "--steps", "2"]):
        result = run_module(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
        assert "usage:" in result.stderr


def test_config_file_errors(cli, tmp_path: Path, migrations: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("database: sqlite:///x.db\nmigratons: m\n")
    result = cli("status", "--config", str(config))
    assert result.code == 2 and "unknown key 'migratons'" in result.err
    config.write_text("database: [unclosed\n")
    result = cli("status", "--config", str(config))
    assert result.code == 2 and f"{config}:2: invalid YAML" in result.err
    missing = cli("status", "--config", str(tmp_path / "absent.yaml"))
    assert missing.code == 2 and "does not exist" in missing.err
    timeout = cli("status", "--lock-timeout", "-1", "--migrations", str(migrations))
    assert timeout.code == 2 and "Invalid lock timeout" in timeout.err


def test_migrate_reads_the_headers_it_runs_and_verify_reads_all(cli, tmp_path: Path,
                                                                 migrations: Path) -> None:
    """A no-op migrate only hashes applied versions; status and verify check every file."""
    args = ["--database", str(tmp_path / "db.sqlite"), "--migrations", str(migrations)]
    assert cli("migrate", *args).code == 0
    (migrations / "001_good" / "migration.yaml").write_text("descripton: typo\n")
    assert cli("migrate", *args).code == 0  # 001 already ran: its header cannot matter now
    for command in ("verify", "status"):
        result = cli(command, *args)
        assert result.code == 2 and "unknown key 'descripton'" in result.err
    write_version(migrations, "002_next", "SELECT 1;\n", header="transaction: maybe\n")
    result = cli("migrate", *args)
    assert result.code == 2 and "002_next/migration.yaml" in result.err


BILLION_LAUGHS = "description: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"k{level}: &{chr(98 + level)} [{', '.join([f'*{chr(97 + level)}'] * 9)}]\n"
    for level in range(9))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (BILLION_LAUGHS, "migration.yaml:1: uses a YAML anchor or alias"),
        ("description: " + "[" * 50 + "]" * 50 + "\n", "nests more than 10 levels deep"),
        ("description: !!python/object:os.system ls\n", "invalid YAML"),
    ],
    ids=["alias-bomb", "deep-nesting", "python-tag"],
)
def test_dangerous_yaml_is_refused_quickly(cli, tmp_path: Path, migrations: Path, header: str,
                                           expected: str) -> None:
    import time

    write_version(migrations, "002_bomb", "SELECT 1;\n", header=header)
    started = time.perf_counter()
    message = _migrate(cli, tmp_path, migrations)
    assert time.perf_counter() - started < 5
    assert f"002_bomb/{expected}" in message or expected in message
    assert len(message) < 2000  # the bomb is never expanded into the message


def test_a_large_header_value_is_quoted_short(cli, tmp_path: Path, migrations: Path) -> None:
    items = ", ".join(str(i) for i in range(5000))
    write_version(migrations, "002_big", "SELECT 1;\n", header=f"description: [{items}]\n")
    message = _migrate(cli, tmp_path, migrations)
    assert "'description' must be a string" in message and len(message) < 1000


def test_a_bug_in_the_fast_yaml_reader_is_not_reported_as_invalid_yaml(
        cli, tmp_path: Path, migrations: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path hides behind read_mapping: its own failure is a bug, not the user's."""
    from sibila_sqlmig import yamlfile

    def broken(text: str) -> object:
        raise KeyError("a bug in the fast reader")

    monkeypatch.setattr(yamlfile, "_load_simple", broken)
    with pytest.raises(KeyError):
        cli("status", "--database", str(tmp_path / "db.sqlite"), "--migrations",
            str(migrations))


def test_a_symbolic_link_loop_or_dangling_link_is_a_clear_problem(cli, tmp_path: Path,
                                                                   migrations: Path) -> None:
    (migrations / "002_loop").symlink_to(migrations / "002_loop")
    (migrations / "003_gone").symlink_to(tmp_path / "nowhere")
    message = _migrate(cli, tmp_path, migrations)
    assert "002_loop: is a symbolic link that cannot be followed" in message
    assert f"003_gone: is a symbolic link to {tmp_path / 'nowhere'}, which does not exist" \
        in message


def test_a_symbolically_linked_version_folder_works(cli, tmp_path: Path,
                                                    migrations: Path) -> None:
    shared = write_version(tmp_path / "shared", "9_elsewhere", "CREATE TABLE linked (a INT);\n",
                           description="Linked from elsewhere")
    (migrations / "002_linked").symlink_to(shared, target_is_directory=True)
    args = ["--database", str(tmp_path / "db.sqlite"), "--migrations", str(migrations)]
    result = cli("migrate", *args)
    assert result.code == 0, result.err
    assert "applied 002 Linked from elsewhere" in result.out
    assert cli("verify", *args).code == 0


@pytest.mark.parametrize("command", [["migrate", "--dry-run"], ["migrate"], ["status"],
                                     ["status", "--json"]])
def test_a_reader_that_goes_away_ends_no_command_early_and_shows_no_traceback(
        tmp_path: Path, command: list[str]) -> None:
    """``sibila-sqlmig ... | head -1``: a real pipe closed after one line."""
    import subprocess
    import sys

    migrations = tmp_path / "migrations"
    for number in range(1, 301):  # 75 KB and more of output: more than a pipe buffer holds
        write_version(migrations, f"{number:03d}_step", f"CREATE TABLE t{number} (a INT);\n"
                      + "-- padding to make the dry run long\n" * 5 + "SELECT 1;\n",
                      description="step " + "x" * 240)
    database = tmp_path / "db.sqlite"
    if command == ["status"] or command == ["status", "--json"]:
        subprocess.run([sys.executable, "-m", "sibila_sqlmig", "migrate", "--database",
                        str(database), "--migrations", str(migrations), "--config", "/dev/null",
                        "-q"], check=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "sibila_sqlmig", *command, "--database", str(database),
         "--migrations", str(migrations), "--config", "/dev/null"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()  # what `head -1` does
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0, errors
    assert "Traceback" not in errors and "BrokenPipe" not in errors
    if command == ["migrate"]:  # every version was applied, not only the ones shown
        import sqlite3

        with sqlite3.connect(database) as connection:
            assert connection.execute("SELECT count(*) FROM schema_migrations").fetchone() \
                == (300,)


def test_header_details(cli, tmp_path: Path, migrations: Path) -> None:
    write_version(migrations, "002_null", "SELECT 1;\n", header="description: ~\n")
    folder = write_version(migrations, "003_latin1", "SELECT 1;\n")
    (folder / "migration.yaml").write_bytes(b"description: ok\n# caf\xe9\n")
    message = _migrate(cli, tmp_path, migrations)
    assert message.count("002_null/migration.yaml") == 1  # one problem, not two
    assert "'description' must be a string, not None" in message
    assert "003_latin1/migration.yaml:2: is not UTF-8 text" in message


def test_windows_line_endings_in_headers_take_the_fast_path(tmp_path: Path,
                                                            migrations: Path) -> None:
    """A CRLF checkout reads like an LF one, without importing PyYAML."""
    import subprocess
    import sys

    (migrations / "001_good" / "migration.yaml").write_bytes(
        b"description: Made on Windows\r\ntransaction: true\r\n")
    script = ("import sys\nfrom sibila_sqlmig.cli import main\n"
              f"code = main(['status', '--database', {str(tmp_path / 'db.sqlite')!r}, "
              f"'--migrations', {str(migrations)!r}, '--config', '/dev/null'])\n"
              "print('yaml' in sys.modules); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "Made on Windows" in result.stdout
    assert result.stdout.strip().endswith("False")
