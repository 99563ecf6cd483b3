"""Pre-run checks: read the split statements of a file before anything runs.

This is the one place for lint-like refusals (see docs/architecture.md). Each
check returns problems that name the file, the statement's line and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import Problem
from .model import HEADER_FILE
from .splitting import Statement, head_words, leading_words

_NON_TRANSACTIONAL = {
    "postgresql": (
        ("CREATE", "INDEX", "CONCURRENTLY"),
        ("CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"),
        ("DROP", "INDEX", "CONCURRENTLY"),
        ("VACUUM",),
        ("CREATE", "DATABASE"),
        ("DROP", "DATABASE"),
        ("ALTER", "SYSTEM"),
        ("CREATE", "TABLESPACE"),
        ("DROP", "TABLESPACE"),
    ),
    "sqlite": (("VACUUM",),),
    "mysql": (),
}


def _is_transaction_control(words: tuple[str, ...], dialect: str) -> bool:
    """BEGIN, START TRANSACTION, COMMIT, ROLLBACK, END, ABORT (but not savepoints)."""
    if not words:
        return False
    first, rest = words[0], words[1:]
    if first == "BEGIN":
        return not (rest[:1] == ("ATOMIC",) or rest[:2] == ("NOT", "ATOMIC"))
    if first == "START":
        return rest[:1] == ("TRANSACTION",)
    if first == "ROLLBACK":
        return "TO" not in rest  # ROLLBACK TO SAVEPOINT stays inside the transaction
    if first in ("COMMIT", "ABORT"):
        return True
    return first == "END" and dialect == "postgresql"


def _needs_own_transaction(words: tuple[str, ...], dialect: str) -> bool:
    """True for statements the engine refuses inside a transaction block."""
    if dialect == "postgresql" and words[:1] == ("REINDEX",) and "CONCURRENTLY" in words:
        return True
    return any(words[: len(prefix)] == prefix for prefix in _NON_TRANSACTIONAL[dialect])


def check_statements(statements: Sequence[Statement], *, path: Path | str, dialect: str,
                     transactional: bool) -> list[Problem]:
    """Problems that must stop a file before its first statement runs."""
    problems: list[Problem] = []
    if not transactional:
        return problems
    for statement in statements:
        words = head_words(statement.sql)
        if _is_transaction_control(words[:3], dialect):
            problems.append(Problem(Path(path), (
                f"'{' '.join(leading_words(statement.sql, 2))}' controls the transaction, but the "
                "file already runs in one transaction with its tracking row, and this would "
                "end it early. Remove it, or set 'transaction: false' in "
                f"{_header_of(path)} to run each statement on its own."), statement.line))
        elif dialect == "sqlite" and _sets_foreign_keys(words, statement.sql):
            problems.append(Problem(Path(path), (
                "'PRAGMA foreign_keys' does nothing inside a transaction (SQLite ignores it "
                "there), and this file runs in one. For a table rebuild, remove it and put "
                f"'foreign_keys: off' in {_header_of(path)}: the pragma is then set outside "
                "the transaction, and PRAGMA foreign_key_check runs before COMMIT."),
                statement.line))
        elif _needs_own_transaction(words, dialect):
            problems.append(Problem(Path(path), (
                f"'{' '.join(leading_words(statement.sql, 4))}' cannot run inside a transaction "
                f"on {dialect}. Set 'transaction: false' in {_header_of(path)} (and keep such "
                "statements in a version of their own)."), statement.line))
    return problems


def _sets_foreign_keys(words: tuple[str, ...], sql: str) -> bool:
    """``PRAGMA [schema.]foreign_keys = ...`` (reading the pragma is harmless)."""
    return words[:1] == ("PRAGMA",) and "FOREIGN_KEYS" in words[1:3] and (
        "=" in sql or "(" in sql)


def _header_of(path: Path | str) -> Path:
    """The migration.yaml beside a SQL file (only built for a message: pathlib is slow)."""
    return Path(path).parent / HEADER_FILE
