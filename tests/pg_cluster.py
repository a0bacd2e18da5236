"""A throwaway PostgreSQL server from Debian's binaries, for the warehouse tests and benchmark.

``.ci/run`` starts one itself and exports :data:`ENV` (a DSN); without it, the tests and
``benchmarks/bench_warehouse.py`` start their own with :meth:`Cluster.start`: ``initdb``
into a temporary directory, ``pg_ctl start`` on a loopback port with the unix socket in
that directory, one database, a random password (SCRAM). Nothing is installed or left
behind: :meth:`Cluster.stop` stops the server and removes the directory.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user
Debian's package creates (``runuser``); as anyone else, as that user.

The DSN holds the password: print :attr:`Cluster.safe_dsn`, never :attr:`Cluster.dsn`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

ENV = "MIXMAX_NB_TEST_PG"
"""The DSN of a running server to use instead of starting one (``.ci/run`` sets it)."""
DEFAULT_PORT = 55432
USER = "mixmax"
DATABASE = "mixmax_test"


def bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with ``initdb``, else ``initdb`` on PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def safe(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***`` (for messages and reports)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            # As the server binds: a port left in TIME_WAIT by an earlier server is free.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free local port")


def _server_env() -> dict[str, str]:
    """The environment without libfaketime: the server runs on the real clock, even
    when the tests run under a shifted one."""
    return {
        k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")
    }


class Cluster:
    """One running throwaway server (see the module docstring)."""

    def __init__(self, root: Path, bin_dir: Path, port: int, password: str) -> None:
        self.root = root
        self.bin = bin_dir
        self.port = port
        self.dsn = f"postgresql://{USER}:{password}@127.0.0.1:{port}/{DATABASE}"

    @property
    def safe_dsn(self) -> str:
        return safe(self.dsn)

    @staticmethod
    def _as_server_user() -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._as_server_user(), *args],
            env=_server_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed: {(done.stderr or done.stdout)[-800:]}"
            )

    @classmethod
    def start(cls, bin_dir: Path | None = None, port: int = DEFAULT_PORT) -> Cluster:
        """initdb + pg_ctl start + createdb; raises RuntimeError saying why it could not."""
        bin_dir = bin_dir or bindir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL's server binaries are not installed")
        root = Path(tempfile.mkdtemp(prefix="mixmax_nb-pg-"))
        password = secrets.token_hex(16)
        cluster = cls(root, bin_dir, _free_port(port), password)
        try:
            pwfile = root / "pw"
            pwfile.write_text(password + "\n", encoding="ascii")
            pwfile.chmod(0o600)
            if os.geteuid() == 0:
                shutil.chown(root, "postgres", "postgres")
                shutil.chown(pwfile, "postgres", "postgres")
            cluster._run(
                str(bin_dir / "initdb"),
                "-D",
                str(root / "data"),
                "-U",
                USER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            pwfile.unlink()
            # Loopback only; fsync off: a test server's data need not survive a crash.
            options = (
                f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            cluster._run(
                str(bin_dir / "pg_ctl"),
                "-D",
                str(root / "data"),
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            )
            env = {**_server_env(), "PGPASSWORD": password}
            done = subprocess.run(
                [
                    str(bin_dir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(cluster.port),
                    "-U",
                    USER,
                    DATABASE,
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"createdb failed: {done.stderr[-800:]}")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and remove its directory."""
        if (self.root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, OSError, subprocess.TimeoutExpired):
                self._run(
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.root / "data"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                )
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
