"""A PgBouncer of the tests' own, in transaction pooling mode, in front of the PostgreSQL
server of SIBILA_SQLMIG_TEST_POSTGRES_URL.

Debian's ``pgbouncer`` package provides the program (``.ci/run`` installs it). The
package may also start a system service on port 6432; that one is never used: each
test module starts its own instance on a free port, with its configuration in a
temporary folder, and stops it afterwards. PgBouncer refuses to run as root, so a
root test run starts it as the ``postgres`` user (setpriv: no shell, and the process
started is PgBouncer itself, so terminating it needs no signal forwarding).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import POSTGRES_URL, REQUIRED

RUN_AS = "postgres"  # the system user of Debian's PostgreSQL packages
POOL_SIZE = 3  # server connections per database and user: 8 clients must share them


def pgbouncer_url(port: int, dbname: str) -> str:
    """The URL of database ``dbname`` through the PgBouncer listening on ``port``."""
    return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"


@dataclass
class PgBouncer:
    """A running PgBouncer: where it listens, and its log (for a failure's message)."""

    port: int
    log: Path

    def url(self, dbname: str) -> str:
        return pgbouncer_url(self.port, dbname)


def _unavailable(reason: str) -> None:
    """Skip, or fail where SIBILA_SQLMIG_TEST_REQUIRE says these tests must run."""
    if REQUIRED & {"postgresql", "pgbouncer", "all"}:
        pytest.fail(f"PgBouncer tests are required (SIBILA_SQLMIG_TEST_REQUIRE) but cannot "
                    f"run: {reason}")
    pytest.skip(f"{reason}; apt-get install pgbouncer (Debian/Ubuntu) to run the PgBouncer "
                "tests")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(folder: Path, port: int) -> Path:
    server = urlsplit(POSTGRES_URL)
    users = {"postgres", "root", server.username or "postgres"}
    # trust: PgBouncer asks for no password, but the user must be in auth_file; the
    # server behind it (trust on 127.0.0.1 in CI) does the real authentication.
    (folder / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in sorted(users)))
    ini = folder / "pgbouncer.ini"
    ini.write_text(f"""\
[databases]
* = host={server.hostname or "127.0.0.1"} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "userlist.txt"}
pool_mode = transaction
max_client_conn = 200
default_pool_size = {POOL_SIZE}
min_pool_size = 0
reserve_pool_size = 0
ignore_startup_parameters = extra_float_digits,options
server_check_delay = 0
""")
    for path in (folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable by the postgres user
    return ini


def _command(ini: Path) -> list[str]:
    program = shutil.which("pgbouncer", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if program is None:
        _unavailable("pgbouncer is not installed")
    assert program is not None
    if os.geteuid() != 0:
        return [program, str(ini)]
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        _unavailable("setpriv (util-linux) is needed to run pgbouncer as postgres")
    assert setpriv is not None
    return [setpriv, f"--reuid={RUN_AS}", f"--regid={RUN_AS}", "--init-groups", program,
            str(ini)]


def _wait_until_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    import psycopg

    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            pytest.fail(f"pgbouncer exited with {process.returncode}: {log.read_text()}")
        try:
            # prepare_threshold None: the probe itself must not trip over transaction mode.
            with psycopg.connect(pgbouncer_url(port, "postgres"), connect_timeout=2,
                                 autocommit=True, prepare_threshold=None) as probe:
                probe.execute("SELECT 1")
            return
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                pytest.fail(f"pgbouncer did not accept connections on port {port}: {error}; "
                            f"its log: {log.read_text()}")
        time.sleep(0.1)


@contextlib.contextmanager
def running_pgbouncer() -> Iterator[PgBouncer]:
    """Start PgBouncer (transaction pooling) on a free port; stop it at the end."""
    folder = Path(tempfile.mkdtemp(prefix="sqlmig-pgbouncer-"))
    try:
        port = _free_port()
        ini = _config(folder, port)
        log = folder / "pgbouncer.log"
        with log.open("wb") as output:
            process = subprocess.Popen(_command(ini), stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        try:
            _wait_until_ready(process, port, log)
            yield PgBouncer(port, log)
        finally:
            process.terminate()  # SIGTERM: PgBouncer closes its connections and exits
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
