"""Lint: the rule table, the findings of one file, and their suppressions (docs/lint.md).

The rules themselves are in ``checks.py`` (``FileRules``: one pass over the split
statements); this module gives each rule its level, engines, why and fix
(``RULES``), keeps the findings of the file's engine, and applies the
``-- sqlmig: allow RULE because REASON`` comments.

A rule's level says what it does: an ``error`` stops ``migrate`` before anything
runs (the statement cannot do what its author meant: the engine refuses it, or
ignores it, where the file runs it); a ``warning`` is printed (a hazard on a large
or busy table, fine on a small one). An allowed finding is kept, marked suppressed,
with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from .checks import FileRules
from .errors import Problem
from .model import HEADER_FILE
from .splitting import Statement

ERROR, WARNING = "error", "warning"
_ALL, _PG, _MY, _LITE = ("sqlite", "postgresql", "mysql"), ("postgresql",), ("mysql",), ("sqlite",)


class Rule(NamedTuple):
    """One rule, as ``lint --json`` and docs/lint.md show it."""

    level: str
    dialects: tuple[str, ...]
    why: str
    fix: str


RULES: dict[str, Rule] = {
    "transaction-control": Rule(ERROR, _ALL, (
        "a statement that controls the transaction (BEGIN, COMMIT, ROLLBACK...) would end "
        "early the one transaction the file runs in with its tracking row"),
        "Remove it, or set 'transaction: false' in migration.yaml to run each statement on "
        "its own."),
    "cannot-run-in-transaction": Rule(ERROR, _ALL, (
        "the engine refuses this statement inside a transaction (CREATE/DROP INDEX "
        "CONCURRENTLY, REINDEX CONCURRENTLY, VACUUM, CREATE DATABASE, ALTER SYSTEM...)"),
        "Set 'transaction: false' in migration.yaml (and keep such statements in a version "
        "of their own)."),
    "sqlite-foreign-keys-pragma": Rule(ERROR, _LITE, (
        "'PRAGMA foreign_keys' does nothing inside a transaction (SQLite ignores it there), "
        "and this file runs in one"),
        "For a table rebuild, remove it and put 'foreign_keys: off' in migration.yaml: the "
        "pragma is then set outside the transaction, and PRAGMA foreign_key_check runs "
        "before COMMIT."),
    "sqlite-pragma-in-transaction": Rule(ERROR, _LITE, (
        "SQLite refuses to change journal_mode into or out of WAL, or synchronous, inside a "
        "transaction, and this file runs in one"),
        "Put the PRAGMA in a version of its own with 'transaction: false'."),
    # A warning, not an error: the literal may be plain text, and PostgreSQL refuses a
    # real use itself, with nothing applied.
    "enum-value-used-in-transaction": Rule(WARNING, _PG, (
        "a value added by ALTER TYPE ... ADD VALUE is used in the same transaction, which "
        "PostgreSQL refuses ('unsafe use of new value')"),
        "Add the value in a version of its own and use it in a later one, or set "
        "'transaction: false' in migration.yaml."),
    "index-without-concurrently": Rule(WARNING, _PG, (
        "CREATE INDEX (or REINDEX) without CONCURRENTLY blocks every write to an existing "
        "table until the index is built"),
        "Use CREATE INDEX CONCURRENTLY in a version of its own with 'transaction: false' (if "
        "it fails it leaves an INVALID index: drop it and run again)."),
    "constraint-without-not-valid": Rule(WARNING, _PG, (
        "adding a FOREIGN KEY or CHECK constraint to an existing table scans it to validate "
        "the rows, blocking writes (for a foreign key, to both tables) meanwhile"),
        "Add it with NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later version "
        "(which does not block writes)."),
    "constraint-builds-index": Rule(WARNING, _PG, (
        "ADD PRIMARY KEY, UNIQUE or EXCLUDE builds an index on an existing table under an "
        "ACCESS EXCLUSIVE lock: reads and writes wait until it is built"),
        "Build the index with CREATE UNIQUE INDEX CONCURRENTLY ('transaction: false'), then "
        "ADD CONSTRAINT ... UNIQUE (or PRIMARY KEY) USING INDEX."),
    "column-type-rewrite": Rule(WARNING, _PG, (
        "ALTER COLUMN ... TYPE rewrites an existing table and its indexes under an ACCESS "
        "EXCLUSIVE lock (widening to varchar(n), varchar or text is not reported: it does "
        "not rewrite from a string type)"),
        "Add a new column, backfill it in batches and switch the code over; or allow the "
        "rule for a small table."),
    "set-not-null": Rule(WARNING, _PG, (
        "SET NOT NULL scans an existing table under an ACCESS EXCLUSIVE lock: reads and "
        "writes wait meanwhile"),
        "Add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later version, then SET NOT "
        "NULL (PostgreSQL 12+ trusts the check and skips the scan) and drop the check."),
    "add-column-rewrite": Rule(WARNING, _PG, (
        "ADD COLUMN with a volatile default (random(), gen_random_uuid(), clock_timestamp(), "
        "nextval()...), a serial or identity type, or a STORED generated column rewrites an "
        "existing table under an ACCESS EXCLUSIVE lock (a constant or now() does not)"),
        "Add the column without the default, backfill it in batches, then SET DEFAULT."),
    "missing-lock-timeout": Rule(WARNING, ("postgresql", "mysql"), (
        "DDL on an existing table waits for its lock behind every open transaction on it, "
        "and every later query on the table queues behind the DDL: with no lock timeout one "
        "long transaction stalls the application (reported once per file)"),
        "Set 'lock_timeout' (seconds, with 'retries') in migration.yaml or as the project's "
        "default, or SET lock_timeout in the file before the DDL."),
    "drop-table": Rule(WARNING, _ALL, (
        "DROP TABLE destroys the table's data, and code still deployed may use it"),
        "Stop using the table in one release and drop it in a later one; keep a backup."),
    "drop-column": Rule(WARNING, _ALL, (
        "DROP COLUMN destroys the column's data, and code still deployed that reads or "
        "writes it fails"),
        "Stop using the column in one release and drop it in a later one."),
    "rename": Rule(WARNING, _ALL, (
        "renaming a table or a column breaks code still deployed that uses the old name"),
        "Add the new name beside the old one (a column kept in sync, or a view), move the "
        "code over, then drop the old name in a later release."),
    "mysql-ddl-with-dml": Rule(WARNING, _MY, (
        "MySQL and MariaDB commit DDL implicitly, so a file that mixes DDL with INSERT, "
        "UPDATE or DELETE cannot roll back as one: a failure leaves part of it applied"),
        "Put the DDL and the data changes in separate versions."),
    "mysql-alter-without-algorithm": Rule(WARNING, _MY, (
        "ALTER TABLE without ALGORITHM= or LOCK= silently copies an existing table, blocking "
        "writes, when the change cannot be made in place"),
        "Say ALGORITHM=INSTANT (or INPLACE) and LOCK=NONE: the server then refuses what "
        "would block instead of doing it; use an online schema change tool for that."),
    "invalid-suppression": Rule(ERROR, _ALL, (
        "a '-- sqlmig:' comment must name known rules and give a reason"),
        "Write '-- sqlmig: allow RULE because REASON' (rule ids: docs/lint.md)."),
    "unused-suppression": Rule(WARNING, _ALL, (
        "this suppression silences nothing: the rule does not fire on the statement that "
        "starts on the next line (or on the comment's own line), or no statement starts "
        "there"),
        "Move it to the line just before the statement, or remove it."),
}
# Suppressing these would break the tool's own guarantees (one transaction per file
# with its tracking row), or make the suppression mechanism silence itself.
_UNSUPPRESSIBLE = frozenset({"transaction-control", "invalid-suppression", "unused-suppression"})


class Finding(NamedTuple):
    """One rule that fired on one statement (or on one ``-- sqlmig:`` comment)."""

    rule: str
    level: str
    path: str
    line: int
    message: str  # why, without a final period
    fix: str
    statement: str  # an excerpt: the first characters, on one line
    suppressed: bool = False
    reason: str | None = None  # the suppression's reason

    def __str__(self) -> str:
        text = f"{self.path}:{self.line}: {self.level} {self.rule}: {self.message}. {self.fix}"
        return f"{text} (allowed: {self.reason})" if self.suppressed else text


def lint_file(text: str, statements: Sequence[Statement], *, path: str, dialect: str,
              transactional: bool, has_lock_timeout: bool) -> list[Finding]:
    """Every finding in one file, ordered by line.

    ``text`` is the file's normalised text, the one ``statements`` were split from (it
    is only read for ``-- sqlmig:`` comments). ``transactional`` is the header's
    ``transaction``; ``has_lock_timeout``: the header or the project sets a lock timeout.
    """
    state = FileRules(dialect, transactional, has_lock_timeout)
    hits = [(index, hit) for index, statement in enumerate(statements)
            for hit in state.check(statement.sql)]
    allows, findings = _suppressions(text, statements, path)
    for index, hit in hits:
        rule = RULES[hit.rule]
        if dialect not in rule.dialects or (hit.tables and set(hit.tables) <= state.replaced):
            continue  # another engine's rule; a DROP TABLE of a rebuilt table
        allow = next((a for a in allows.get(index, ()) if hit.rule in a.rules), None)
        if allow is not None:
            allow.used.add(hit.rule)
        findings.append(_finding(hit.rule, path, statements[index].line, statements[index].sql,
                                 hit.message, allow))
    unique = {id(allow): allow for of_statement in allows.values() for allow in of_statement}
    findings += [_finding("unused-suppression", path, allow.line, allow.comment,
                          f"'allow {rule}' silences nothing here")
                 for allow in unique.values() for rule in allow.rules if rule not in allow.used]
    return sorted(findings, key=lambda finding: finding.line)


#: Warnings that name what a down.sql is for: dropping what its up.sql made is the point.
EXPECTED_IN_DOWN = frozenset({"drop-table", "drop-column", "rename"})


def refusals(findings: Sequence[Finding]) -> list[Problem]:
    """The findings that stop a run: errors not allowed by a ``-- sqlmig:`` comment, each
    message ending with its rule id."""
    return [Problem(Path(finding.path), f"{finding.message}. {finding.fix} [{finding.rule}]",
                    finding.line)
            for finding in findings if finding.level == ERROR and not finding.suppressed]


def of_direction(findings: Sequence[Finding], *, down: bool) -> list[Finding]:
    """The findings that concern a file as it is used: of a down.sql, not the warnings
    about what a down.sql is for (dropping what its up.sql made)."""
    return [finding for finding in findings
            if not (down and finding.level == WARNING and finding.rule in EXPECTED_IN_DOWN)]


def warnings_of(findings: Sequence[Finding], *, down: bool) -> list[Finding]:
    """The warnings to print (not allowed; of a down.sql, not those it exists for)."""
    return [finding for finding in of_direction(findings, down=down)
            if finding.level == WARNING and not finding.suppressed]


def _finding(rule: str, path: str, line: int, sql: str, message: str | None = None,
             allow: _Allow | None = None) -> Finding:
    spec = RULES[rule]
    fix = spec.fix
    if " migration.yaml" in fix:  # name the file to edit (pathlib only here: it is slow)
        fix = fix.replace(" migration.yaml", f" {Path(path).parent / HEADER_FILE}")
    return Finding(rule, spec.level, path, line, message or spec.why, fix, _excerpt(sql),
                   allow is not None, allow.reason if allow else None)


def _excerpt(sql: str, limit: int = 120) -> str:
    flat = " ".join(sql[: limit * 3].split())  # never the whole of a large INSERT
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# --- suppressions ------------------------------------------------------------------------

class _Allow(NamedTuple):
    """One ``-- sqlmig: allow`` comment, and the rules it actually silenced (``used``
    fills as findings are matched). A NamedTuple, not a dataclass: importing
    dataclasses (and with it inspect) cost every run that applies a file 6 ms."""

    rules: tuple[str, ...]
    reason: str
    line: int
    comment: str
    used: set[str]


_ALLOW = re.compile(r"--\s*sqlmig:\s*allow\s+([\w-]+(?:\s*,\s*[\w-]+)*)"
                    r"(?:\s+because\b\s*(.*?))?\s*$")


def _suppressions(text: str, statements: Sequence[Statement], path: str
                  ) -> tuple[dict[int, list[_Allow]], list[Finding]]:
    """The ``-- sqlmig:`` comments before each statement and on its first line: valid
    ones by the index of the statement they apply to, findings for the others.

    Only the gaps between statements and the first lines are searched, never the body of
    a large statement (a comment after a one-line statement's ``;`` is in the gap).
    """
    allows: dict[int, list[_Allow]] = {}
    findings: list[Finding] = []
    starts: dict[int, list[int]] = {}
    for index, statement in enumerate(statements):
        starts.setdefault(statement.line, []).append(index)
    for begin, end in _comment_zones(text, statements):
        pos = text.find("sqlmig:", begin, end)
        while pos != -1:
            line_start = text.rfind("\n", 0, pos) + 1
            line_end = text.find("\n", pos)
            line_end = len(text) if line_end == -1 else line_end
            dash = text.rfind("--", line_start, pos)
            if dash != -1:  # else "sqlmig:" is not in a comment
                line = text.count("\n", 0, pos) + 1  # rare: the cost of a count is fine
                _read_allow(text, line, line_start, dash, line_end, starts, allows, findings,
                            path)
            pos = text.find("sqlmig:", line_end, end)
    return allows, findings


def _comment_zones(text: str, statements: Sequence[Statement]) -> Iterator[tuple[int, int]]:
    """Where suppressions may be: each gap between statements and each first line."""
    previous_end = 0
    for statement in statements:
        yield previous_end, statement.offset
        previous_end = statement.offset + len(statement.sql)
        first_line_end = text.find("\n", statement.offset, previous_end)
        if first_line_end != -1:  # a statement of one line: its end comment is in the gap
            yield statement.offset, first_line_end
    yield previous_end, len(text)


def _read_allow(text: str, line: int, line_start: int, dash: int, line_end: int,
                starts: dict[int, list[int]], allows: dict[int, list[_Allow]],
                findings: list[Finding], path: str) -> None:
    """Attach one ``-- sqlmig:`` comment to its statements, or report it."""
    comment = text[dash:line_end].strip()
    allow, problem = _parse_allow(comment, line)
    if problem is not None or allow is None:
        findings.append(_finding("invalid-suppression", path, line, comment, problem))
        return
    trailing = bool(text[line_start:dash].strip())  # code before it on its line
    target = line if trailing else _next_code_line(text, line_end, line)
    for index in starts.get(target, ()):
        allows.setdefault(index, []).append(allow)
    if target not in starts:
        findings.append(_finding("unused-suppression", path, line, comment,
                                 "no statement starts on the line after it"))


def _parse_allow(comment: str, line: int) -> tuple[_Allow | None, str | None]:
    """The comment as a suppression, or what is wrong with it."""
    match = _ALLOW.match(comment)
    if match is None:
        return None, f"cannot read {comment!r}"
    rules = tuple(rule.strip() for rule in match[1].split(","))
    for rule in rules:
        if rule not in RULES:
            return None, f"{comment!r} names no rule {rule!r}"
        if rule in _UNSUPPRESSIBLE:
            return None, f"rule {rule!r} cannot be allowed"
    if not match[2]:
        return None, f"{comment!r} gives no reason ('because ...')"
    return _Allow(rules, match[2], line, comment, set()), None


def _next_code_line(text: str, end: int, line: int) -> int:
    """The line after the run of whole-line ``--`` comments that follows ``end``."""
    while end < len(text):
        start, line = end + 1, line + 1
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        if not text[start:end].lstrip().startswith("--"):
            break
    return line
