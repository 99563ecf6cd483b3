"""Pre-run checks: read the split statements of a file before anything runs.

This is the one place for lint-like refusals (DESIGN.md section 8). Each
check returns problems that name the file, the statement's line and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .errors import Problem
from .splitting import Statement

_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_COMMENTS = re.compile(r"--[^\n]*|/\*(?!!).*?\*/", re.S)

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
# MySQL and MariaDB commit implicitly before and after these statements.
_MYSQL_IMPLICIT_COMMIT = frozenset([
    "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE", "GRANT", "REVOKE", "LOCK", "UNLOCK",
    "INSTALL", "UNINSTALL", "ANALYZE", "OPTIMIZE", "REPAIR", "FLUSH",
])


def opening_words(sql: str, count: int = 6) -> list[str]:
    """The first words of a statement as written, comments skipped."""
    head = sql[:400]
    if "--" in head or "/*" in head:
        head = _COMMENTS.sub(" ", head)
    return _WORDS.findall(head)[:count]


def head_words(sql: str, count: int = 6) -> tuple[str, ...]:
    """The first words of a statement, upper case, comments skipped."""
    return tuple(word.upper() for word in opening_words(sql, count))


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


def commits_implicitly(sql: str, dialect: str) -> bool:
    """True where the engine commits the open transaction around this statement (MySQL DDL)."""
    if dialect != "mysql":
        return False
    words = head_words(sql, 2)
    if words[1:] == ("TEMPORARY",):
        return False  # CREATE/DROP TEMPORARY TABLE stay inside the transaction
    return bool(words) and words[0] in _MYSQL_IMPLICIT_COMMIT


def check_statements(statements: Sequence[Statement], *, path: Path, dialect: str,
                     transactional: bool) -> list[Problem]:
    """Problems that must stop a file before its first statement runs."""
    problems: list[Problem] = []
    if not transactional:
        return problems
    header = path.parent / "migration.yaml"
    for statement in statements:
        words = head_words(statement.sql)
        if _is_transaction_control(words[:3], dialect):
            problems.append(Problem(path, (
                f"'{' '.join(opening_words(statement.sql, 2))}' controls the transaction, but the "
                "file already runs in one transaction with its tracking row, and this would "
                "end it early. Remove it, or set 'transaction: false' in "
                f"{header} to run each statement on its own."), statement.line))
        elif _needs_own_transaction(words, dialect):
            problems.append(Problem(path, (
                f"'{' '.join(opening_words(statement.sql, 4))}' cannot run inside a transaction "
                f"on {dialect}. Set 'transaction: false' in {header} (and keep such statements "
                "in a version of their own)."), statement.line))
    return problems
