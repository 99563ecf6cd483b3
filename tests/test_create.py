"""``create``: new version folders, numbered, slugged, never outside the folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sibila_sqlmig.discovery import discover
from sibila_sqlmig.scaffold import next_version, slugify


def test_create_writes_the_three_files(cli, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    result = cli("create", "Add user authentication table", "--migrations", str(migrations))
    assert result.code == 0, result.err
    folder = migrations / "001_add_user_authentication_table"
    assert sorted(path.name for path in folder.iterdir()) == ["down.sql", "migration.yaml",
                                                              "up.sql"]
    second = cli("create", "Add sessions", "--migrations", str(migrations))
    assert second.code == 0 and (migrations / "002_add_sessions").is_dir()
    # The skeleton's up.sql has no statement yet: migrate says so instead of recording it.
    problem = cli("migrate", "--database", str(tmp_path / "x.db"), "--migrations",
                  str(migrations))
    assert problem.code == 2 and "holds no SQL statement" in problem.err
    (folder / "up.sql").write_text("CREATE TABLE users (id INTEGER PRIMARY KEY);\n")
    (migrations / "002_add_sessions" / "up.sql").write_text("CREATE TABLE s (id INT);\n")
    found = discover(migrations, "sqlite")
    assert [m.header.description for m in found if m.header] == [
        "Add user authentication table", "Add sessions"]


def test_create_cannot_escape_the_migrations_folder(cli, tmp_path: Path) -> None:
    migrations = tmp_path / "deep" / "migrations"
    result = cli("create", "../../x", "--migrations", str(migrations))
    assert result.code == 0
    assert [path.name for path in migrations.iterdir()] == ["001_x"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["deep", "empty_config.yaml"]


def test_create_refuses_an_empty_slug(cli, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    for description in ("", "../..", "!!!"):
        result = cli("create", description, "--migrations", str(migrations))
        assert result.code == 2 and "Cannot make a folder name" in result.err
    assert not migrations.exists() or not any(migrations.iterdir())


def test_description_with_quotes_round_trips(cli, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    text = 'Fix "users": it\'s #1 - café: yes'
    assert cli("create", text, "--migrations", str(migrations)).code == 0
    folder = next(migrations.iterdir())
    (folder / "up.sql").write_text("SELECT 1;\n")
    assert discover(migrations, "sqlite")[0].header.description == text


def test_slugs_and_numbering() -> None:
    assert slugify("Add paragraph indexes") == "add_paragraph_indexes"
    assert slugify("  Ünïcode -- stuff!! ") == "unicode_stuff"
    assert len(slugify("x" * 200)) == 60
    assert next_version([], "sequential") == "001"
    assert next_version(["001", "009"], "sequential") == "010"
    assert next_version(["0001"], "sequential") == "0002"
    assert next_version(["999"], "sequential") == "1000"
    moment = datetime(2026, 11, 29, 18, 30, 0, tzinfo=UTC)
    assert next_version([], "timestamp", moment) == "20261129183000"
    assert next_version(["20261129183000"], "timestamp", moment) == "20261129183001"
