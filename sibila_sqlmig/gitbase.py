"""``verify --git-base REF``: the migrations folder against a git commit, no database.

A version folder that exists at REF may already have run somewhere, so it must
still be there with the same up.sql (by the tracking table's checksum rule, so a
CRLF checkout is not an edit), and a new version must sort after REF's newest.
REF's files are read through git itself (``ls-tree`` and one ``cat-file
--batch``), never by checking anything out, so this works on a shallow clone.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

from .discovery import discover, parse_version_folder
from .errors import ConfigError
from .model import UP_FILE
from .sqlfile import sql_checksum

# C locale: git's messages are quoted in ours. Literal pathspecs: a folder name
# holding "*" or "?" is a name, not a pattern.
_GIT_ENV = {**os.environ, "LC_ALL": "C", "GIT_LITERAL_PATHSPECS": "1"}


class GitVerifyResult(NamedTuple):
    """The work tree's versions compared with those at ``ref`` (versions as strings).

    ``late_allowed`` holds new versions numbered before ``base_newest`` that
    ``out_of_order=True`` let through; ``added`` the new ones after it. ``paths``
    maps a version to its up.sql (the work tree's; for a removed version, REF's),
    ``base_paths`` an edited or removed version to its up.sql at REF, from the
    repository's root. ``base_has_folder`` is False when the migrations folder did
    not exist at REF, so every version is new.
    """

    ref: str
    edited: list[str]
    removed: list[str]
    out_of_order: list[str]
    added: list[str]
    late_allowed: list[str]
    base_newest: str | None
    base_has_folder: bool
    paths: dict[str, str]
    base_paths: dict[str, str]

    @property
    def ok(self) -> bool:
        """True when nothing at REF was edited or removed and nothing new is out of order."""
        return not (self.edited or self.removed or self.out_of_order)

    def problems(self) -> list[str]:
        """One line per finding: the version, its path, and what to do next."""
        ref, lines = self.ref, []
        for version in self.edited:
            path, base = self.paths[version], self.base_paths[version]
            # A renamed slug: checking out REF's path would bring back a second folder.
            same = Path(path).parent.name == Path(base).parent.name
            restore = (f"git checkout {ref} -- {base}" if same
                       else f"git show {ref}:{base} > {path}")
            lines.append(f"version {version} ({path}) was edited since {ref}: restore it with "
                         f"`{restore}`, or add a new version that makes the change")
        for version in self.removed:
            base = self.base_paths[version]
            lines.append(f"version {version} ({base} at {ref}) is gone from the work tree: "
                         f"restore it (`git checkout {ref} -- {Path(base).parent.as_posix()}`); "
                         "a version that ran somewhere cannot vanish")
        for version in self.out_of_order:
            lines.append(f"version {version} ({self.paths[version]}) is new but numbered before "
                         f"{ref}'s newest version {self.base_newest}: renumber it after "
                         f"{self.base_newest} (`sibila-sqlmig create` picks the next number) "
                         "or pass --out-of-order")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values, with ``ok`` and ``problems``."""
        return {**self._asdict(), "ok": self.ok, "problems": self.problems()}


def verify_against_git(migrations_dir: Path, ref: str, dialect: str, *,
                       out_of_order: bool = False) -> GitVerifyResult:
    """Compare the migrations folder with its state at git revision ``ref``.

    Raises MigrationFilesError for a broken folder in the work tree, and
    ConfigError when git is missing, the folder is not in a git repository, or
    ``ref`` is unknown there.
    """
    current = discover(migrations_dir, dialect, headers=False, unwritten_ok=True)
    top, prefix = _repository(migrations_dir)
    commit = _commit(top, ref)
    base, base_has_folder = _base_versions(top, commit, prefix)
    checksums = _checksums(top, {sha for _, _, sha in base.values()})
    now = {migration.number: migration for migration in current}
    paths = {m.version: m.up.location for m in current}
    edited: list[str] = []
    removed: list[str] = []
    base_paths: dict[str, str] = {}
    for number, (version, path, sha) in sorted(base.items()):
        migration = now.get(number)
        if migration is None:
            removed.append(version)
            paths[version] = base_paths[version] = path
        elif migration.up.checksum != checksums[sha]:
            edited.append(migration.version)
            base_paths[migration.version] = path
    newest = max(base, default=None)
    late: list[str] = []
    added: list[str] = []
    for migration in current:  # ordered by number
        if migration.number not in base:
            before = newest is not None and migration.number < newest
            (late if before else added).append(migration.version)
    return GitVerifyResult(ref, edited, removed, [] if out_of_order else late, added,
                           late if out_of_order else [],
                           None if newest is None else base[newest][0], base_has_folder,
                           paths, base_paths)


def _git(args: list[str], cwd: str | Path, what: str) -> bytes:
    """git's output; ConfigError (naming ``what`` failed, with git's words) if it fails."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=_GIT_ENV, capture_output=True,
                              check=False)
    except FileNotFoundError:
        raise ConfigError("git is not installed (or not on PATH); --git-base needs it: "
                          "install git, or verify without --git-base") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(f"{what} ({said[-1] if said else f'exit {done.returncode}'})")
    return done.stdout


def _repository(migrations_dir: Path) -> tuple[str, str]:
    """The repository's root and the migrations folder's path inside it ("db/m/" or "")."""
    out = _git(["rev-parse", "--show-toplevel", "--show-prefix"], migrations_dir,
               f"{migrations_dir} is not inside a git work tree; --git-base needs a clone "
               "of the repository (or verify without --git-base)")
    lines = os.fsdecode(out).split("\n")
    return lines[0], lines[1] if len(lines) > 1 else ""


def _commit(top: str, ref: str) -> str:
    """The commit ``ref`` names, refused with how to fetch it when git cannot find it."""
    found = None if ref.startswith("-") else subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=top,
        env=_GIT_ENV, capture_output=True, check=False)
    if found is None or found.returncode != 0:
        # "origin/main" is branch main of remote origin; anything else, ask origin.
        plain = "/" not in ref or ref.startswith("refs/")
        remote, _, branch = ("origin", "", ref) if plain else ref.partition("/")
        raise ConfigError(f"git cannot find REF {ref!r}: fetch it first (actions/checkout "
                          f"with fetch-depth: 0, or git fetch {remote} {branch})")
    return found.stdout.decode().strip()


def _base_versions(top: str, commit: str, prefix: str) -> tuple[
        dict[int, tuple[str, str, str]], bool]:
    """REF's versions by number: (version, up.sql path from the root, blob id); and
    whether the migrations folder existed at REF (git keeps no empty folders)."""
    out = _git(["ls-tree", "-r", "-z", commit, "--", *([prefix] if prefix else [])], top,
               f"git could not list {prefix or 'the repository'} at {commit}")
    versions: dict[int, tuple[str, str, str]] = {}
    entries = [entry for entry in out.split(b"\0") if entry]
    for entry in entries:
        info, _, raw_path = entry.partition(b"\t")
        _mode, kind, sha = info.decode().split()
        path = os.fsdecode(raw_path)
        parts = path[len(prefix):].split("/")
        parsed = parse_version_folder(parts[0])
        # A duplicate number at REF (which discover refuses) keeps its first folder.
        if (kind == "blob" and parts[1:] == [UP_FILE] and parsed is not None
                and parsed[1] not in versions):
            versions[parsed[1]] = (parsed[0], path, sha)
    return versions, bool(entries) or not prefix


def _checksums(top: str, shas: set[str]) -> dict[str, str]:
    """The checksum of each blob, read by one ``git cat-file --batch`` one blob at a time,
    so memory holds only the largest up.sql however many versions there are."""
    checksums: dict[str, str] = {}
    if not shas:
        return checksums
    with subprocess.Popen(["git", "cat-file", "--batch"], cwd=top, env=_GIT_ENV,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as process:
        assert process.stdin is not None and process.stdout is not None
        for sha in sorted(shas):
            process.stdin.write(f"{sha}\n".encode())
            process.stdin.flush()
            header = process.stdout.readline().split()
            if len(header) != 3:  # "<sha> missing": a partial clone that cannot fetch it
                process.kill()
                raise ConfigError(f"git cannot read blob {sha}; fetch the commit's files "
                                  "(git fetch without --filter)")
            checksums[sha] = sql_checksum(process.stdout.read(int(header[2])))
            process.stdout.read(1)  # the newline after each object
        process.stdin.close()
        if process.wait() != 0:
            raise ConfigError(f"git cat-file failed (exit {process.returncode})")
    return checksums
