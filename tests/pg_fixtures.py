"""A throw-away PostgreSQL cluster for tests and benchmarks: Debian's package, initdb + pg_ctl on a
loopback port in a temporary directory, as the `postgres` user when run as root (initdb refuses
root). `.ci/run` installs the package; this never downloads anything."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


class Postgres:
    """A cluster on a loopback port; trust auth for the one local role, nothing beyond 127.0.0.1."""

    def __init__(self, base: Path, bin_dir: Path | None = None):
        self.bin = bin_dir or pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does it)")
        self.as_user: list[str] = []
        self._own_dir = False
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to `postgres`
            self.as_user = ["runuser", "-u", "postgres", "--"]
            # Its own directory directly under /tmp: `postgres` must reach it, and pytest resets its
            # own base directory to 0700 whenever any session starts (parallel runs included).
            self.dir = Path(tempfile.mkdtemp(prefix="llm-upkeep-pg-"))
            self._own_dir = True
        else:
            self.dir = base / "pg"
        self.port = free_port()

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([*self.as_user, *args], check=True, timeout=timeout, capture_output=True)

    def start(self, max_connections: int = 200) -> str:
        """Start it; the SQLAlchemy URL of database `prefect` (asyncpg driver)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "prefect",
                  "-E", "UTF8")  # fmt: skip
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c max_connections={max_connections} -c fsync=on"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-o", opts, "-l",
                  str(self.dir / "pg.log"), "-w", "-t", "60", "start")  # fmt: skip
        self._run(
            str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "prefect", "prefect"
        )
        return f"postgresql+asyncpg://prefect@127.0.0.1:{self.port}/prefect"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
