"""``verify --git-base REF``: the migrations folder against a git commit, no database.

What this branch must not do is judged against the **merge-base** of HEAD and REF
(``git merge-base HEAD REF``), the commit this branch started from, not REF's tip:

* a version that exists at the merge-base may already have run somewhere, so it
  must still be there with the same up.sql (by the tracking table's checksum rule,
  so a CRLF checkout is not an edit): edited or removed here is this branch's doing;
* a new version (one not at the merge-base) must sort after REF's tip's newest
  version (unless ``out_of_order``), and must not share its number with a version
  REF gained meanwhile (a collision: renumber yours); one whose up.sql is the same
  as REF's (a cherry-pick) is REF's version, not a new one;
* a version REF gained after the fork that this branch lacks is information
  (``behind``: merge or rebase REF), not a failure.

When there is no merge-base (a shallow clone that fetched only REF, or unrelated
histories) REF's tip is compared instead, as if the branch started there;
``base_is_merge_base`` is then False and ``notes()`` says so.

REF's files are read through git itself (``ls-tree`` and one ``cat-file
--batch``), never by checking anything out, so this works on a shallow clone.
Symbolic links stored in git (mode 120000: a linked version folder or up.sql) are
followed inside the commit's tree, as the work tree's are; one that points out of
the repository, nowhere, or in a loop leaves that version's up.sql uncompared,
with a note (``skipped``), and the version still counts as present.

The suggested restore commands name paths the way git reads them from any folder
of the repository: ``git checkout REV -- :/path/from/the/root`` and
``git show REV:path/from/the/root``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple

from .discovery import discover, parse_version_folder
from .errors import ConfigError
from .model import UP_FILE
from .sqlfile import sql_checksum

# C locale: git's messages are quoted in ours. Literal pathspecs: a folder name
# holding "*" or "?" is a name, not a pattern.
_GIT_ENV = {**os.environ, "LC_ALL": "C", "GIT_LITERAL_PATHSPECS": "1"}
_LINK_MODE = "120000"
_MAX_LINKS = 40  # as Linux's path resolution: more links than this is a loop


class GitVerifyResult(NamedTuple):
    """The work tree's versions compared with git (versions as strings).

    ``base`` is the commit edits and removals are judged against: the merge-base of
    HEAD and ``ref`` (``base_is_merge_base``), or ``ref``'s tip (``ref_commit``)
    when there is none. ``edited`` and ``removed`` are versions at ``base`` changed
    or gone here; ``collisions`` new versions whose number ``ref``'s tip holds with
    another up.sql; ``out_of_order`` new versions numbered before ``base_newest``
    (``ref``'s tip's newest), which ``out_of_order=True`` moves to ``late_allowed``;
    ``added`` the new ones after it; ``behind`` versions ``ref``'s tip gained that
    this branch lacks (information only). ``paths`` maps a version to its up.sql
    (the work tree's; for a removed version, ``base``'s), ``base_paths`` an edited
    or removed version to its up.sql at ``base``, ``ref_paths`` a collision or
    behind version to its up.sql at ``ref`` (all from the repository's root);
    ``fixes`` an edited or removed version to the git command that restores it;
    ``skipped`` a version whose up.sql at ``base`` is a symbolic link git cannot
    follow inside the commit to why it was not compared. ``base_has_folder`` is
    False when the migrations folder did not exist at ``base``, so every version
    is new.
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
    ref_commit: str
    base: str
    base_is_merge_base: bool
    collisions: list[str]
    behind: list[str]
    ref_paths: dict[str, str]
    fixes: dict[str, str]
    skipped: dict[str, str]

    @property
    def ok(self) -> bool:
        """True when nothing at the base was edited or removed, and nothing new collides
        with REF's versions or is out of order."""
        return not (self.edited or self.removed or self.out_of_order or self.collisions)

    def problems(self) -> list[str]:
        """One line per failure: the version, its path, and what to do next."""
        ref, lines = self.ref, []
        at_tip = self.base == self.ref_commit
        since = ref if at_tip else f"this branch left {ref} (merge-base {self.base[:12]})"
        for version in self.edited:
            lines.append(f"version {version} ({self.paths[version]}) was edited since {since}: "
                         f"restore it with `{self.fixes[version]}`, or add a new version that "
                         "makes the change")
        for version in self.removed:
            where = ref if at_tip else "the merge-base"
            lines.append(f"version {version} ({self.base_paths[version]} at {where}) is gone "
                         f"from the work tree: restore it (`{self.fixes[version]}`); a version "
                         "that ran somewhere cannot vanish"
                         + ("" if self.base_is_merge_base else
                            f" (no merge-base of HEAD and {ref} was found, so {ref}'s tip was "
                            f"compared: if {ref} gained it after this branch forked, merge or "
                            f"rebase {ref} instead)"))
        for version in self.collisions:
            theirs = Path(self.ref_paths[version]).parent.name
            lines.append(f"version {version} ({self.paths[version]}) has the same number as "
                         f"{ref}'s {theirs}: renumber yours after {self.base_newest} "
                         "(`sibila-sqlmig create` picks the next number)")
        for version in self.out_of_order:
            lines.append(f"version {version} ({self.paths[version]}) is new but numbered before "
                         f"{ref}'s newest version {self.base_newest}: renumber it after "
                         f"{self.base_newest} (`sibila-sqlmig create` picks the next number) "
                         "or pass --out-of-order")
        return lines

    def notes(self) -> list[str]:
        """Information that fails nothing: the versions REF has that this branch lacks,
        a comparison with REF's tip for want of a merge-base, up.sql links not followed."""
        ref, lines = self.ref, []
        if not self.base_is_merge_base:
            lines.append(f"no merge-base of HEAD and {ref} (a shallow clone, unrelated "
                         f"histories, or no commit yet): compared with {ref}'s tip instead; "
                         "fetch more history (fetch-depth: 0) to compare with the commit this "
                         "branch started from")
        if self.behind:
            lines.append(f"{ref} has {', '.join(self.behind)} that this branch lacks: merge or "
                         f"rebase {ref}")
        for version, why in self.skipped.items():
            lines.append(f"version {version}: {why}; its up.sql was not compared")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values, with ``ok``, ``problems`` and ``notes``."""
        return {**self._asdict(), "ok": self.ok, "problems": self.problems(),
                "notes": self.notes()}


class _Version(NamedTuple):
    """A version at a commit: its up.sql by its path in the migrations folder, and
    (symbolic links followed) the blob and path of its content, or why there is none."""

    version: str
    path: str
    blob: str | None
    file: str | None
    note: str | None


def verify_against_git(migrations_dir: Path, ref: str, dialect: str, *,
                       out_of_order: bool = False) -> GitVerifyResult:
    """Compare the migrations folder with git: edits and removals against the merge-base
    of HEAD and ``ref``, new versions against ``ref``'s tip (see the module's rule).

    Raises MigrationFilesError for a broken folder in the work tree, and
    ConfigError when git is missing, the folder is not in a git repository, or
    ``ref`` is unknown there.
    """
    current = discover(migrations_dir, dialect, headers=False, unwritten_ok=True)
    top, prefix = _repository(migrations_dir)
    tip = _commit(top, ref)
    merge_base = _merge_base(top, tip)
    base = merge_base or tip
    with _Objects(top) as objects:
        theirs, tip_has_folder = _versions(top, tip, prefix, objects)
        ours, base_has_folder = ((theirs, tip_has_folder) if base == tip
                                 else _versions(top, base, prefix, objects))
        now = {migration.number: migration for migration in current}
        paths = {m.version: m.up.location for m in current}
        edited: list[str] = []
        removed: list[str] = []
        base_paths: dict[str, str] = {}
        fixes: dict[str, str] = {}
        skipped: dict[str, str] = {}
        for number, old in sorted(ours.items()):
            at_tip = theirs.get(number)
            migration = now.get(number)
            if migration is None:
                removed.append(old.version)
                paths[old.version] = base_paths[old.version] = old.path
                same = at_tip is not None and at_tip.path == old.path and at_tip.blob == old.blob
                folder = old.path.rpartition("/")[0]
                fixes[old.version] = _checkout(ref if same else base[:12], folder)
            elif old.blob is None or old.file is None:
                skipped[migration.version] = f"{old.path} at {base[:12]} {old.note}"
            elif migration.up.checksum != objects.checksum(old.blob):
                edited.append(migration.version)
                base_paths[migration.version] = old.path
                same = at_tip is not None and at_tip.file == old.file and at_tip.blob == old.blob
                fixes[migration.version] = _restore(top, ref if same else base[:12], old.file,
                                                    migration.up.location)
        newest = max(theirs, default=None)
        late: list[str] = []
        added: list[str] = []
        collisions: list[str] = []
        ref_paths: dict[str, str] = {}
        for migration in current:  # ordered by number
            if migration.number in ours:
                continue
            twin = theirs.get(migration.number)  # REF gained this number meanwhile
            if twin is not None:
                folder = Path(migration.up.location).parent.name
                if (twin.blob is not None and twin.path.split("/")[-2] == folder
                        and objects.checksum(twin.blob) == migration.up.checksum):
                    continue  # REF's own version (merged or cherry-picked): not new
                collisions.append(migration.version)
                ref_paths[migration.version] = twin.path
            elif newest is not None and migration.number < newest:
                late.append(migration.version)
            else:
                added.append(migration.version)
        behind = []
        for number, version in sorted(theirs.items()):
            if number not in ours and number not in now:
                behind.append(version.version)
                ref_paths[version.version] = version.path
    return GitVerifyResult(ref, edited, removed, [] if out_of_order else late, added,
                           late if out_of_order else [],
                           None if newest is None else theirs[newest].version, base_has_folder,
                           paths, base_paths, tip, base, merge_base is not None, collisions,
                           behind, ref_paths, fixes, skipped)


def _top_path(path: str) -> str:
    """A pathspec for ``path`` (from the repository's root) that git reads the same from
    any folder of the repository; literal when the name holds glob characters."""
    return (f":(top,literal){path}" if any(char in path for char in "*?[\\")
            else f":/{path}")


def _checkout(rev: str, path: str) -> str:
    return f"git checkout {shlex.quote(rev)} -- {shlex.quote(_top_path(path))}"


def _restore(top: str, rev: str, file: str, location: str) -> str:
    """The command that puts ``rev``'s ``file`` back as the work tree's up.sql at
    ``location``: a checkout when that is where it lives here too, else ``git show``."""
    here = os.path.relpath(os.path.realpath(location), os.path.realpath(top))
    if Path(here).as_posix() == file:
        return _checkout(rev, file)
    return f"git show {shlex.quote(f'{rev}:{file}')} > {shlex.quote(location)}"


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


def _merge_base(top: str, commit: str) -> str | None:
    """The merge-base of HEAD and ``commit``; None when there is none (a shallow clone
    that fetched only REF, unrelated histories, or no commit on HEAD yet)."""
    done = subprocess.run(["git", "merge-base", "HEAD", commit], cwd=top, env=_GIT_ENV,
                          capture_output=True, check=False)
    found = done.stdout.decode().strip()
    return found.split()[0] if done.returncode == 0 and found else None


def _ls_tree(top: str, commit: str, prefix: str, *, whole: bool = False) -> list[
        tuple[str, str, str, str]]:
    """(mode, type, id, path from the root) of every file under ``prefix`` at ``commit``
    (``whole``: every file and folder of the commit)."""
    args = ["ls-tree", "-r", "-z", commit] if not whole else ["ls-tree", "-r", "-t", "-z",
                                                              commit]
    out = _git([*args, "--", *([prefix] if prefix and not whole else [])], top,
               f"git could not list {prefix or 'the repository'} at {commit}")
    entries = []
    for entry in out.split(b"\0"):
        if entry:
            info, _, raw_path = entry.partition(b"\t")
            mode, kind, sha = info.decode().split()
            entries.append((mode, kind, sha, os.fsdecode(raw_path)))
    return entries


def _versions(top: str, commit: str, prefix: str, objects: _Objects) -> tuple[
        dict[int, _Version], bool]:
    """The versions at ``commit`` by number, and whether the migrations folder existed.

    A version is a version folder holding up.sql, or a symbolic link named as a version
    folder; links (the folder's or up.sql's) are followed inside the commit's tree.
    """
    entries = _ls_tree(top, commit, prefix)
    found: dict[int, tuple[str, str, str, bool]] = {}  # version, up.sql path, id, linked
    for mode, kind, sha, path in entries:
        parts = path[len(prefix):].split("/")
        parsed = parse_version_folder(parts[0])
        if parsed is None or parsed[1] in found:
            continue  # a duplicate number at REF (which discover refuses) keeps its first
        if kind == "blob" and parts[1:] == [UP_FILE]:
            found[parsed[1]] = (parsed[0], path, sha, mode == _LINK_MODE)
        elif kind == "blob" and len(parts) == 1 and mode == _LINK_MODE:
            found[parsed[1]] = (parsed[0], f"{path}/{UP_FILE}", sha, True)
    tree: dict[str, tuple[str, str, str]] | None = None
    versions: dict[int, _Version] = {}
    for number, (version, path, sha, linked) in found.items():
        if not linked:
            versions[number] = _Version(version, path, sha, path, None)
            continue
        if tree is None:
            tree = {path: (mode, kind, sha)
                    for mode, kind, sha, path in _ls_tree(top, commit, "", whole=True)}
        resolved = _resolve(tree, path, objects)
        versions[number] = (_Version(version, path, None, None, resolved)
                            if isinstance(resolved, str)
                            else _Version(version, path, resolved[1], resolved[0], None))
    return versions, bool(entries) or not prefix


def _resolve(tree: dict[str, tuple[str, str, str]], path: str,
             objects: _Objects) -> tuple[str, str] | str:
    """(path, blob id) of the file ``path`` leads to in ``tree``, symbolic links followed
    as the file system would; or why there is none."""
    pending = path.split("/")
    done: list[str] = []
    hops = 0
    link = ""  # the last link followed: "path -> target"

    def through(what: str) -> str:
        named = "is the" if link.startswith(f"{path} -> ") else "is reached through the"
        return f"{named} symbolic link {link}, which {what}"

    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            if not done:
                return through("points out of the repository")
            done.pop()
            continue
        here = "/".join([*done, name])
        entry = tree.get(here)
        if entry is None or (pending and entry[1] == "blob" and entry[0] != _LINK_MODE):
            return through("points to nothing") if link else "does not exist"
        mode, _, sha = entry
        if mode == _LINK_MODE:
            hops += 1
            target = os.fsdecode(objects.read(sha))
            link = f"{here} -> {target}"
            if hops > _MAX_LINKS:
                return through(f"loops (more than {_MAX_LINKS} links followed)")
            if target.startswith("/"):
                return through("points out of the repository")
            pending = [*target.split("/"), *pending]
            continue
        done.append(name)
    final = tree.get("/".join(done))
    if final is None or final[1] != "blob":
        return through("leads to a folder")
    return "/".join(done), final[2]


class _Objects:
    """One ``git cat-file --batch`` process, started on first use, reading objects by id
    one at a time, so memory holds only the largest up.sql however many there are."""

    def __init__(self, top: str) -> None:
        self._top = top
        self._process: subprocess.Popen[bytes] | None = None
        self._checksums: dict[str, str] = {}

    def __enter__(self) -> _Objects:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close(failed=kind is not None)

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        if self._process is None:
            self._process = subprocess.Popen(
                ["git", "cat-file", "--batch"], cwd=self._top, env=_GIT_ENV,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self._process.stdin is not None and self._process.stdout is not None
        return self._process.stdin, self._process.stdout

    def read(self, sha: str) -> bytes:
        """The object's bytes; ConfigError when git cannot read it."""
        stdin, stdout = self._pipes()
        stdin.write(f"{sha}\n".encode())
        stdin.flush()
        header = stdout.readline().split()
        if len(header) != 3:  # "<sha> missing": a partial clone that cannot fetch it
            self.close(failed=True)
            raise ConfigError(f"git cannot read blob {sha}; fetch the commit's files "
                              "(git fetch without --filter)")
        data = stdout.read(int(header[2]))
        stdout.read(1)  # the newline after each object
        return data

    def checksum(self, sha: str) -> str:
        """The up.sql checksum of a blob (sqlfile's rule), each blob read once."""
        if sha not in self._checksums:
            self._checksums[sha] = sql_checksum(self.read(sha))
        return self._checksums[sha]

    def close(self, *, failed: bool = False) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if failed:
            process.kill()
            process.wait()
            return
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.stdout.close()
        if process.wait() != 0:
            raise ConfigError(f"git cat-file failed (exit {process.returncode})")
