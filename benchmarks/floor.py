"""The floor: the least a migrator can do, as a baseline for benchmarks/run.py.

One transaction per file with its tracking row and a SHA-256 of up.sql; no
YAML, no splitting, no validation, no lock. A no-op run reads the table and
hashes every up.sql. Drivers: sqlite3, psycopg2 (cheaper to import than
psycopg 3), PyMySQL. Usage: python floor.py URL MIGRATIONS_DIR
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TABLE = "floor_migrations"
CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (version {{key}} PRIMARY KEY, checksum TEXT)"


def pending(migrations: str, applied: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    """(version, SQL, checksum) of each version not in ``applied``; hashes every file."""
    names = sorted(os.listdir(migrations), key=lambda name: int(name.split("_", 1)[0]))
    for name in names:
        version = name.split("_", 1)[0]
        data = Path(migrations, name, "up.sql").read_bytes()
        checksum = hashlib.sha256(data).hexdigest()
        if version not in applied:
            yield version, data.decode(), checksum


def run_sqlite(path: str, migrations: str) -> None:
    import sqlite3

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(CREATE.format(key="TEXT"))
    applied = dict(connection.execute(f"SELECT version, checksum FROM {TABLE}").fetchall())
    for version, sql, checksum in pending(migrations, applied):
        connection.executescript(f"BEGIN;\n{sql}\n;INSERT INTO {TABLE} VALUES "
                                 f"('{version}', '{checksum}');\nCOMMIT;")


def run_postgres(url: str, migrations: str) -> None:
    import psycopg2  # its import costs far less than psycopg 3's

    connection = psycopg2.connect(url)
    cursor = connection.cursor()
    with connection:  # psycopg2: each `with connection` block is one transaction
        cursor.execute(CREATE.format(key="TEXT"))
        cursor.execute(f"SELECT version, checksum FROM {TABLE}")
        applied = dict(cursor.fetchall())
    for version, sql, checksum in pending(migrations, applied):
        with connection:
            cursor.execute(sql)  # the whole file, as one query string
            cursor.execute(f"INSERT INTO {TABLE} VALUES (%s, %s)", [version, checksum])


def run_mysql(url: str, migrations: str) -> None:
    import pymysql
    from pymysql.constants import CLIENT

    user, location = url.split("://", 1)[1].split("@", 1)
    host_port, database = location.split("/", 1)
    host, port = host_port.split(":")
    connection = pymysql.connect(host=host, port=int(port), user=user, database=database,
                                 client_flag=CLIENT.MULTI_STATEMENTS, autocommit=False)
    cursor: Any = connection.cursor()
    cursor.execute(CREATE.format(key="VARCHAR(255)"))
    cursor.execute(f"SELECT version, checksum FROM {TABLE}")
    applied = dict(cursor.fetchall())
    for version, sql, checksum in pending(migrations, applied):
        cursor.execute(sql)
        while cursor.nextset():
            pass
        cursor.execute(f"INSERT INTO {TABLE} VALUES (%s, %s)", [version, checksum])
        connection.commit()


if __name__ == "__main__":
    target, folder = sys.argv[1], sys.argv[2]
    if target.startswith("postgresql://"):
        run_postgres(target, folder)
    elif target.startswith("mysql://"):
        run_mysql(target, folder)
    else:
        run_sqlite(target, folder)
