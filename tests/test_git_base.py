"""verify --git-base REF: the migrations folder against a git commit, with real git."""

from __future__ import annotations

import os
import shlex
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
    assert "`git checkout main -- :/migrations/001_one/up.sql`" in line
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
    assert "git checkout main -- :/db/migrations/001_one/up.sql" in result.problems()[0]


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


# The merge-base: what this branch started from, not REF's tip.


def fork(repo: Path, branch: str = "feature") -> str:
    """Start ``branch`` at main's tip (checked out); returns the fork commit."""
    git(repo, "checkout", "-q", "-b", branch)
    return git(repo, "rev-parse", "HEAD")


def on_main(repo: Path, *names: str, message: str = "main") -> None:
    """Commit versions ``names`` on main, then come back to the branch."""
    branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    git(repo, "checkout", "-q", "main")
    for name in names:
        add_version(repo / "migrations", name)
    if not names:
        (repo / "NEWS").write_text(f"{message}\n")
    commit_all(repo, message)
    git(repo, "checkout", "-q", branch)


def test_a_branch_behind_ref_passes_and_says_so(repo: Path) -> None:
    forked = fork(repo)
    on_main(repo, "003_three")
    result = verify(repo)
    assert result.ok and result.problems() == []
    assert result.removed == [] and result.behind == ["003"]
    assert result.base == forked and result.base_is_merge_base
    assert result.ref_commit == git(repo, "rev-parse", "main")
    assert result.base_newest == "003" and result.added == []
    assert result.notes() == ["main has 003 that this branch lacks: merge or rebase main"]
    assert result.to_dict()["behind"] == ["003"]
    assert result.to_dict()["notes"] == result.notes()


def test_both_branches_add_the_same_number_is_a_collision(repo: Path) -> None:
    fork(repo)
    add_version(repo / "migrations", "003_mine", table="mine")
    commit_all(repo)
    on_main(repo, "003_theirs")
    for out_of_order in (False, True):  # --out-of-order does not make a duplicate right
        result = verify(repo, out_of_order=out_of_order)
        assert not result.ok and result.collisions == ["003"]
        assert result.edited == [] and result.behind == [] and result.added == []
        [line] = result.problems()
        assert line == (f"version 003 ({repo}/migrations/003_mine/up.sql) has the same "
                        "number as main's 003_theirs: renumber yours after 003 "
                        "(`sibila-sqlmig create` picks the next number)")
        assert result.ref_paths == {"003": "migrations/003_theirs/up.sql"}
    assert (repo / "migrations/003_mine/up.sql").read_text().startswith("CREATE TABLE mine")
    # The same up.sql under another name is still a second 003 once merged.
    (repo / "migrations/003_mine/up.sql").write_text("CREATE TABLE t003 (id INTEGER);\n")
    assert verify(repo).collisions == ["003"]


def test_ref_s_own_version_here_is_not_new(repo: Path) -> None:
    """A version cherry-picked (or merged) from main, same up.sql: neither new, nor a
    collision, nor behind."""
    fork(repo)
    on_main(repo, "003_three")
    add_version(repo / "migrations", "003_three")
    result = verify(repo)
    assert result.ok and result.collisions == result.added == result.behind == []


def test_a_new_version_before_ref_s_newest_is_out_of_order(repo: Path) -> None:
    fork(repo)
    on_main(repo, "004_theirs")
    add_version(repo / "migrations", "003_mine")
    result = verify(repo)
    assert not result.ok and result.out_of_order == ["003"] and result.behind == ["004"]
    [line] = result.problems()
    assert "numbered before main's newest version 004" in line
    allowed = verify(repo, out_of_order=True)
    assert allowed.ok and allowed.late_allowed == ["003"]


def test_edits_and_removals_are_judged_against_the_merge_base(repo: Path) -> None:
    forked = fork(repo)
    git(repo, "checkout", "-q", "main")
    (repo / "migrations/002_two/up.sql").write_text("CREATE TABLE main_edit (id INTEGER);\n")
    commit_all(repo, "main edits 002")
    git(repo, "checkout", "-q", "feature")
    result = verify(repo)
    assert result.ok, result.problems()  # main's edit is not this branch's doing
    (repo / "migrations/001_one/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    shutil.rmtree(repo / "migrations/002_two")
    result = verify(repo)
    assert not result.ok and result.edited == ["001"] and result.removed == ["002"]
    edited, removed = result.problems()
    assert f"since this branch left main (merge-base {forked[:12]})" in edited
    # 001 is the same at main: restored from main; 002 is not: from the merge-base.
    assert result.fixes == {"001": "git checkout main -- :/migrations/001_one/up.sql",
                            "002": f"git checkout {forked[:12]} -- :/migrations/002_two"}
    assert "(migrations/002_two/up.sql at the merge-base)" in removed
    for command in result.fixes.values():
        subprocess.run(shlex.split(command), cwd=repo, check=True, capture_output=True)
    assert verify(repo).ok
    assert (repo / "migrations/002_two/up.sql").read_text().startswith("CREATE TABLE t002")


def test_no_merge_base_in_a_shallow_clone_compares_with_ref_s_tip(repo: Path,
                                                                   tmp_path: Path) -> None:
    fork(repo)
    add_version(repo / "migrations", "003_three")
    commit_all(repo)
    on_main(repo)  # main moves on (no migration), so the fork point is not its tip
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "feature",
                    f"file://{repo}", str(clone)], check=True, capture_output=True)
    git(clone, "fetch", "-q", "--depth", "1", "origin", "main:refs/remotes/origin/main")
    merge_base = subprocess.run(["git", "merge-base", "HEAD", "origin/main"], cwd=clone,
                                capture_output=True, check=False)
    assert merge_base.returncode == 1
    result = verify(clone, "origin/main")
    assert result.ok and result.added == ["003"] and not result.base_is_merge_base
    assert result.base == result.ref_commit == git(clone, "rev-parse", "origin/main")
    [note] = result.notes()
    assert note.startswith("no merge-base of HEAD and origin/main (a shallow clone")
    shutil.rmtree(clone / "migrations/001_one")
    [line] = verify(clone, "origin/main").problems()
    assert "gone from the work tree" in line and "no merge-base" in line


def test_no_merge_base_in_unrelated_histories(repo: Path) -> None:
    git(repo, "checkout", "-q", "--orphan", "other")
    commit_all(repo, "unrelated")
    result = verify(repo)
    assert result.ok and not result.base_is_merge_base and result.notes()


# Symbolic links stored in git are followed inside the commit.


def linked_repo(tmp_path: Path) -> Path:
    """main: 001_one whose up.sql links to shared/001.sql, 002_two a link to the folder
    shared/002_two, 003_out whose up.sql links out of the repository."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    shared = root / "shared"
    add_version(shared, "002_two")
    (shared / "001.sql").write_text("CREATE TABLE t001 (id INTEGER);\n")
    folder = add_version(root / "migrations", "001_one")
    (folder / "up.sql").unlink()
    (folder / "up.sql").symlink_to("../../shared/001.sql")
    (root / "migrations/002_two").symlink_to("../shared/002_two")
    (tmp_path / "outside.sql").write_text("CREATE TABLE t003 (id INTEGER);\n")
    folder = add_version(root / "migrations", "003_out")
    (folder / "up.sql").unlink()
    (folder / "up.sql").symlink_to("../../../outside.sql")
    commit_all(root)
    return root


def test_symbolic_links_are_followed(tmp_path: Path) -> None:
    root = linked_repo(tmp_path)
    result = verify(root)
    assert result.ok and result.problems() == []
    assert result.base_newest == "003" and result.edited == result.removed == []
    assert list(result.skipped) == ["003"]
    [note] = result.notes()
    assert note == ("version 003: migrations/003_out/up.sql at "
                    f"{result.base[:12]} is the symbolic link migrations/003_out/up.sql -> "
                    "../../../outside.sql, which points out of the repository; its up.sql "
                    "was not compared")


def test_an_edit_through_a_symbolic_link_is_an_edit(tmp_path: Path) -> None:
    root = linked_repo(tmp_path)
    (root / "shared/001.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    (root / "shared/002_two/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    result = verify(root)
    assert result.edited == ["001", "002"]
    assert result.fixes == {"001": "git checkout main -- :/shared/001.sql",
                            "002": "git checkout main -- :/shared/002_two/up.sql"}
    for command in result.fixes.values():
        subprocess.run(shlex.split(command), cwd=root, check=True, capture_output=True)
    assert verify(root).ok


def test_a_deleted_symbolic_link_is_removed(tmp_path: Path) -> None:
    root = linked_repo(tmp_path)
    (root / "migrations/002_two").unlink()
    shutil.rmtree(root / "migrations/001_one")
    shutil.rmtree(root / "migrations/003_out")  # its up.sql unread, the version still was
    result = verify(root)
    assert not result.ok and result.removed == ["001", "002", "003"]
    assert result.base_paths["002"] == "migrations/002_two/up.sql"
    assert result.fixes["002"] == "git checkout main -- :/migrations/002_two"
    for command in result.fixes.values():
        subprocess.run(shlex.split(command), cwd=root, check=True, capture_output=True)
    assert (root / "migrations/002_two").is_symlink()
    assert verify(root).ok


def test_broken_symbolic_links_at_the_base_are_noted(repo: Path) -> None:
    """A link at REF that points nowhere or loops: its up.sql is not compared (noted),
    the version still counts (deleting it is a removal)."""
    migrations = repo / "migrations"
    (migrations / "003_gone").symlink_to("../shared/nothing")
    (migrations / "004_loop").symlink_to("004_loop")
    commit_all(repo)
    for name in ("003_gone", "004_loop"):
        (migrations / name).unlink()
        add_version(migrations, name)
    result = verify(repo)
    assert result.ok and result.base_newest == "004"
    assert result.notes() == [
        "version 003: migrations/003_gone/up.sql at "
        f"{result.base[:12]} is reached through the symbolic link migrations/003_gone -> "
        "../shared/nothing, which points to nothing; its up.sql was not compared",
        "version 004: migrations/004_loop/up.sql at "
        f"{result.base[:12]} is reached through the symbolic link migrations/004_loop -> "
        "004_loop, which loops (more than 40 links followed); its up.sql was not compared"]
    shutil.rmtree(migrations / "004_loop")
    assert verify(repo).removed == ["004"]


# The suggested commands work from any folder of the repository.


def test_the_suggested_commands_work_from_a_subdirectory(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for name in ("001_one", "002_two", "003_three"):
        add_version(root / "backend/migrations", name)
    (root / "docs").mkdir()
    (root / "docs/x.md").write_text("x\n")
    commit_all(root)
    migrations = root / "backend/migrations"
    (migrations / "001_one/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    shutil.rmtree(migrations / "002_two")
    (migrations / "003_three").rename(migrations / "003_drei")
    (migrations / "003_drei/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    result = verify(root, folder="backend/migrations")
    assert result.fixes["001"] == "git checkout main -- :/backend/migrations/001_one/up.sql"
    assert result.fixes["002"] == "git checkout main -- :/backend/migrations/002_two"
    assert result.fixes["003"] == (f"git show main:backend/migrations/003_three/up.sql > "
                                   f"{migrations}/003_drei/up.sql")
    env = {key: value for key, value in os.environ.items()
           if key != "GIT_LITERAL_PATHSPECS"}  # as in the user's shell
    for where in (root / "docs", migrations / "001_one"):
        for version in ("001", "002"):
            command = result.fixes[version]
            subprocess.run(shlex.split(command), cwd=where, env=env, check=True,
                           capture_output=True)
        subprocess.run(result.fixes["003"], shell=True, cwd=where, env=env, check=True,
                       capture_output=True)
        assert verify(root, folder="backend/migrations").ok
        (migrations / "001_one/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
        shutil.rmtree(migrations / "002_two")
        (migrations / "003_drei/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    assert (root / "docs/backend").exists() is False  # nothing restored beside the cwd


def test_a_glob_character_in_the_path_is_literal(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    add_version(root / "db[1]/migrations", "001_one")
    commit_all(root)
    (root / "db[1]/migrations/001_one/up.sql").write_text("CREATE TABLE t9 (id INTEGER);\n")
    [fix] = verify(root, folder="db[1]/migrations").fixes.values()
    assert fix == "git checkout main -- ':(top,literal)db[1]/migrations/001_one/up.sql'"
    subprocess.run(shlex.split(fix), cwd=root / "db[1]", check=True, capture_output=True)
    assert verify(root, folder="db[1]/migrations").ok


def test_no_database_url_is_read(repo: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A $DATABASE_URL meant for something else does not stop a check that needs none."""
    monkeypatch.setenv("DATABASE_URL", "redis://localhost/0")
    result = cli("verify", "--git-base", "main", "--migrations", str(repo / "migrations"))
    assert result.code == 0, result.err
