"""verify --git-base REF: the migrations folder against a git commit, with real git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sibila_sqlmig.errors import ConfigError
from sibila_sqlmig.gitbase import GitVerifyResult, verify_against_git

if shutil.which("git") is None:
    pytest.skip("git is not installed; install git to run the --git-base tests",
                allow_module_level=True)


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity, so a fresh machine works."""
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t",
                           "-c", "init.defaultBranch=main", *args],
                          cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def add_version(migrations: Path, name: str, table: str | None = None) -> Path:
    folder = migrations / name
    folder.mkdir(parents=True)
    table = table or f"t{name.split('_')[0]}"
    (folder / "migration.yaml").write_text("description: x\n")
    (folder / "up.sql").write_text(f"CREATE TABLE {table} (id INTEGER);\n")
    (folder / "down.sql").write_text(f"DROP TABLE {table};\n")
    return folder


def commit_all(repo: Path, message: str = "m") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose main branch holds versions 001 and 002 in migrations/."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    add_version(root / "migrations", "001_one")
    add_version(root / "migrations", "002_two")
    commit_all(root)
    return root


def verify(repo: Path, ref: str = "main", *, out_of_order: bool = False,
           folder: str = "migrations") -> GitVerifyResult:
    return verify_against_git(repo / folder, ref, "sqlite", out_of_order=out_of_order)


def test_clean_passes(repo: Path) -> None:
    result = verify(repo)
    assert result.ok and result.problems() == []
    assert result.base_newest == "002" and result.added == [] and result.base_has_folder


def test_edited_up_sql_fails_naming_it(repo: Path) -> None:
    (repo / "migrations/001_one/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    result = verify(repo)
    assert not result.ok and result.edited == ["001"]
    [line] = result.problems()
    assert "version 001" in line and "001_one/up.sql" in line
    assert "git checkout main -- migrations/001_one/up.sql" in line
    assert result.to_dict()["edited"] == ["001"] and result.to_dict()["ok"] is False


def test_edited_with_renamed_slug_suggests_git_show(repo: Path) -> None:
    (repo / "migrations/001_one").rename(repo / "migrations/001_uno")
    assert verify(repo).ok  # same number, same up.sql: a rename only
    (repo / "migrations/001_uno/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    [line] = verify(repo).problems()
    assert "git show main:migrations/001_one/up.sql >" in line and "001_uno" in line


def test_crlf_conversion_and_bom_are_not_edits(repo: Path) -> None:
    up = repo / "migrations/001_one/up.sql"
    up.write_bytes(b"\xef\xbb\xbf" + up.read_bytes().replace(b"\n", b"\r\n"))
    assert verify(repo).ok


def test_edited_down_sql_and_header_pass(repo: Path) -> None:
    (repo / "migrations/001_one/down.sql").write_text("DROP TABLE IF EXISTS t001;\n")
    (repo / "migrations/001_one/migration.yaml").write_text("description: better\n")
    assert verify(repo).ok


def test_deleted_version_fails(repo: Path) -> None:
    shutil.rmtree(repo / "migrations/001_one")
    result = verify(repo)
    assert not result.ok and result.removed == ["001"]
    [line] = result.problems()
    assert "migrations/001_one/up.sql" in line and "cannot vanish" in line


def test_new_version_before_newest_fails_unless_out_of_order(repo: Path) -> None:
    shutil.rmtree(repo / "migrations/001_one")
    commit_all(repo)  # main now: 002 only
    add_version(repo / "migrations", "001_late")
    result = verify(repo)
    assert not result.ok and result.out_of_order == ["001"]
    [line] = result.problems()
    assert "renumber it after 002" in line and "--out-of-order" in line
    allowed = verify(repo, out_of_order=True)
    assert allowed.ok and allowed.late_allowed == ["001"] and allowed.out_of_order == []


def test_clean_addition_after_newest_is_listed(repo: Path) -> None:
    add_version(repo / "migrations", "003_three")
    result = verify(repo)
    assert result.ok and result.added == ["003"]


def test_version_matched_by_number(repo: Path) -> None:
    (repo / "migrations/002_two").rename(repo / "migrations/2_two")
    assert verify(repo).ok


def test_missing_ref(repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"git cannot find REF 'origin/main': fetch it "
                       r"first .*git fetch origin main"):
        verify(repo, "origin/main")
    with pytest.raises(ConfigError, match="cannot find REF"):
        verify(repo, "--output=x")


def test_not_a_git_repository(tmp_path: Path) -> None:
    add_version(tmp_path / "migrations", "001_one")
    with pytest.raises(ConfigError, match="is not inside a git work tree"):
        verify(tmp_path)


def test_ref_as_commit_hash(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "migrations/001_one/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    commit_all(repo)
    assert verify(repo, "main").ok
    assert verify(repo, first).edited == ["001"]
    assert verify(repo, first[:10]).edited == ["001"]


def test_shallow_clone(repo: Path, tmp_path: Path) -> None:
    add_version(repo / "migrations", "003_three")
    commit_all(repo)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                   check=True, capture_output=True)
    assert git(clone, "rev-parse", "--is-shallow-repository") == "true"
    (clone / "migrations/003_three/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    add_version(clone / "migrations", "004_four")
    result = verify(clone, "origin/main")
    assert result.edited == ["003"] and result.added == ["004"]


def test_migrations_in_a_subdirectory(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    add_version(root / "db/migrations", "001_one")
    add_version(root / "other/migrations", "005_elsewhere")  # not ours: never counted
    commit_all(root)
    (root / "db/migrations/001_one/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    add_version(root / "db/migrations", "002_two")
    result = verify(root, folder="db/migrations")
    assert result.edited == ["001"] and result.added == ["002"]
    assert result.base_newest == "001"
    assert "git checkout main -- db/migrations/001_one/up.sql" in result.problems()[0]


def test_folder_absent_at_ref_means_all_new(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("x\n")
    commit_all(root)
    add_version(root / "db/migrations", "001_one")
    add_version(root / "db/migrations", "002_two")
    result = verify(root, folder="db/migrations")
    assert result.ok and not result.base_has_folder
    assert result.added == ["001", "002"] and result.base_newest is None


def test_the_command_line_exit_codes_and_json(repo: Path, cli) -> None:
    """0 clean, 1 naming each finding (text and JSON), 2 for an unknown REF; no database
    is opened (the URL given points nowhere)."""
    import json

    args = ("--migrations", str(repo / "migrations"), "--database",
            "postgresql://nobody@127.0.0.1:1/none")
    clean = cli("verify", "--git-base", "main", *args)
    assert clean.code == 0 and "verify --git-base main: OK" in clean.out
    (repo / "migrations" / "001_one" / "up.sql").write_text("CREATE TABLE changed (a INT);\n")
    add_version(repo / "migrations", "000_early")
    edited = cli("verify", "--git-base", "main", *args)
    assert edited.code == 1 and "verify --git-base main: FAILED" in edited.out
    assert "version 001" in edited.out and "version 000" in edited.out
    document = json.loads(cli("verify", "--git-base", "main", "--json", *args).out)
    assert document["ok"] is False and document["edited"] == ["001"]
    assert document["out_of_order"] == ["000"]
    allowed = json.loads(cli("verify", "--git-base", "main", "--out-of-order", "--json",
                             *args).out)
    assert allowed["out_of_order"] == [] and allowed["late_allowed"] == ["000"]
    assert allowed["ok"] is False  # 001 is still edited
    missing = cli("verify", "--git-base", "no-such-branch", *args)
    assert missing.code == 2 and "git cannot find REF 'no-such-branch'" in missing.err
    alone = cli("verify", "--out-of-order", *args)
    assert alone.code == 2 and "only applies with --git-base" in alone.err


def test_the_pre_commit_hook_runs_the_check_against_origin_main(repo: Path,
                                                                tmp_path: Path) -> None:
    """The hook's entry and args, run as pre-commit runs them, in a clone of the repo."""
    import shlex
    import sys

    import yaml

    from conftest import ROOT

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    [hook] = [hook for hook in hooks if hook["id"] == "sibila-sqlmig-git-base"]
    program, *words = shlex.split(hook["entry"])
    assert program == "sibila-sqlmig" and hook["pass_filenames"] is False
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    command = [sys.executable, "-m", "sibila_sqlmig", *words, *hook["args"]]
    good = subprocess.run(command, cwd=clone, capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stderr + good.stdout
    (clone / "migrations" / "002_two" / "up.sql").write_text("CREATE TABLE other (a INT);\n")
    bad = subprocess.run(command, cwd=clone, capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "version 002" in bad.stdout
