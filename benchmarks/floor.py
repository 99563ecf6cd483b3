"""The floor: the least a migrator can do, as a baseline for benchmarks/run.py.

One transaction per file with its tracking row and a SHA-256 of up.sql; no
YAML, no splitting, no validation, no lock. A no-op run reads the table and
hashes every up.sql. Usage: python floor.py URL MIGRATIONS_DIR
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

TABLE = "floor_migrations"


def versions(migrations: str) -> list[tuple[str, str]]:
    names = sorted(os.listdir(migrations), key=lambda name: int(name.split("_", 1)[0]))
    return [(name.split("_", 1)[0], os.path.join(migrations, name, "up.sql")) for name in names]


def run_sqlite(path: str, migrations: str) -> None:
    import sqlite3

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (version TEXT PRIMARY KEY, "
                       "checksum TEXT)")
    applied = dict(connection.execute(f"SELECT version, checksum FROM {TABLE}").fetchall())
    for version, up in versions(migrations):
        data = Path(up).read_bytes()
        checksum = hashlib.sha256(data).hexdigest()
        if version in applied:
            continue
        connection.executescript(f"BEGIN;\n{data.decode()}\n;INSERT INTO {TABLE} VALUES "
                                 f"('{version}', '{checksum}');\nCOMMIT;")


def run_postgres(url: str, migrations: str) -> None:
    import psycopg

    connection = psycopg.connect(url, autocommit=True)
    connection.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (version TEXT PRIMARY KEY, "
                       "checksum TEXT)")
    applied = dict(connection.execute(f"SELECT version, checksum FROM {TABLE}").fetchall())
    for version, up in versions(migrations):
        data = Path(up).read_bytes()
        checksum = hashlib.sha256(data).hexdigest()
        if version in applied:
            continue
        with connection.transaction():
            connection.execute(data.decode())  # type: ignore[call-overload]
            connection.execute(f"INSERT INTO {TABLE} VALUES (%s, %s)", [version, checksum])


def run_mysql(url: str, migrations: str) -> None:
    import pymysql
    from pymysql.constants import CLIENT

    rest = url.split("://", 1)[1]
    user, location = rest.split("@", 1)
    host_port, database = location.split("/", 1)
    host, port = host_port.split(":")
    connection = pymysql.connect(host=host, port=int(port), user=user, database=database,
                                 client_flag=CLIENT.MULTI_STATEMENTS, autocommit=False)
    cursor: Any = connection.cursor()
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (version VARCHAR(255) PRIMARY KEY, "
                   "checksum TEXT)")
    cursor.execute(f"SELECT version, checksum FROM {TABLE}")
    applied = dict(cursor.fetchall())
    for version, up in versions(migrations):
        data = Path(up).read_bytes()
        checksum = hashlib.sha256(data).hexdigest()
        if version in applied:
            continue
        cursor.execute(data.decode())
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
