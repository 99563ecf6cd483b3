"""A throwaway PostgreSQL cluster with default settings, for benchmarks/run.py.

The cluster lives on disk in one folder (recreated each time): ``data/`` from
``initdb``, the server log, and the Unix socket. Nothing is tuned (fsync stays
on); the server listens on 127.0.0.1 only, on a free port. initdb and postgres
refuse to run as root, so as root they run as the ``postgres`` OS user, which
then owns the folder. ``stop()`` is safe to call more than once and is also
registered with atexit. ``describe(url)`` says which server a URL reaches.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import socket
import subprocess
from pathlib import Path


def bin_dir() -> Path:
    """The newest /usr/lib/postgresql/*/bin that has initdb."""
    found = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not found:
        raise RuntimeError("initdb not found under /usr/lib/postgresql/*/bin")
    return max(found, key=lambda path: [int(n) for n in re.findall(r"\d+", path.parent.name)])


def describe(url: str) -> str:
    """The server's version, data directory and fsync setting."""
    import psycopg

    with psycopg.connect(url) as connection:
        shown = [connection.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                 for name in ("server_version", "data_directory", "fsync")]
    return f"PostgreSQL {shown[0]}, data directory {shown[1]}, fsync {shown[2]}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.bin = bin_dir()
        self.as_root = os.geteuid() == 0
        self.started = False

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, str(self.bin / program), *args], check=check,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def start(self) -> str:
        """initdb and start; returns the server URL (without a database name)."""
        if (self.data / "postmaster.pid").exists():  # left running by a killed run
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        if self.as_root:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        atexit.register(self.stop)
        self._run("initdb", "-D", str(self.data), "--auth=trust", "--username=postgres",
                  "--encoding=UTF8", "--locale=C.UTF-8")
        port = free_port()
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {port}\n"
                       f"unix_socket_directories = '{self.folder}'\n")
        log = self.folder / "server.log"
        self.started = True  # from here on, stop() tries pg_ctl stop
        try:
            self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "start")
        except subprocess.CalledProcessError:
            tail = log.read_text(errors="replace")[-1000:] if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{tail}") from None
        return f"postgresql://postgres@127.0.0.1:{port}/"

    def stop(self) -> None:
        if self.started:
            self.started = False
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
