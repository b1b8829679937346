"""Benchmark plumbing: the server, scratch databases, the awa-pg side process,
a progress bar, statistics and the result files.

Nothing here measures anything; bench/producer.py and bench/e2e.py do.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from awa.db.url import with_dbname

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
AWA_PG_VENV = REPO_ROOT / ".bench-venv-awa-pg"
AWA_PG_REQUIREMENT = "awa-pg==0.6.9"
AWA_PG_SIDE_SCRIPT = Path(__file__).resolve().parent / "awa_pg_side.py"


# --- small statistics ---------------------------------------------------------


from bench.e2e_common import percentile  # noqa: E402,F401  (one rule for both sides)


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


# --- progress -----------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, *, enabled: bool = True, width: int = 30) -> None:
        self.total = max(1, total)
        self.done = 0
        self.enabled = enabled
        self.width = width
        self.started = time.monotonic()
        self._tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        self.done = min(self.total, self.done + 1)
        self._draw(label)

    def note(self, label: str) -> None:
        self._draw(label)

    def _draw(self, label: str) -> None:
        if not self.enabled:
            return
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self.started
        line = f"[{bar}] {self.done}/{self.total} {elapsed:6.1f}s {label}"
        if self._tty:
            sys.stderr.write("\r\x1b[2K" + line[:160])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


# --- server and databases -----------------------------------------------------


@dataclass
class Server:
    """The PostgreSQL server both sides share; databases are created and dropped here."""

    url: str
    embedded: Any = None
    created: list[str] = field(default_factory=list)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def name(self, base: str) -> str:
        return f"{base}_{self.tag}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            if template:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
                )
            else:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if name not in self.created:
            self.created.append(name)
        return with_dbname(self.url, name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in self.created:
            self.created.remove(name)

    def describe(self) -> dict[str, Any]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            full = conn.execute("SELECT version()").fetchone()[0]
            max_conn = conn.execute("SHOW max_connections").fetchone()[0]
            settings = {name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
                        for name in REPORTED_SETTINGS}
        return {
            "server_version": version,
            "version": full,
            "max_connections": int(max_conn),
            **settings,
            "durable": all(settings[name] == "on" for name in DURABILITY_SETTINGS),
            "embedded": self.embedded is not None,
        }

    def close(self) -> None:
        for name in list(self.created):
            with contextlib.suppress(psycopg.Error):
                self.drop_database(name)
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


# PostgreSQL's own defaults for what makes a commit durable. The embedded
# server of the tests switches them off (awa/db/embedded.py); a benchmark
# measures what users run, so it switches them back on, and its memory and
# WAL sizes back to PostgreSQL's defaults too. Only max_connections stays
# raised: both sides' pools and worker processes need it.
DURABILITY_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")
DURABLE_SETTINGS = {name: "on" for name in DURABILITY_SETTINGS} | {"shared_buffers": "128MB", "max_wal_size": "1GB"}
REPORTED_SETTINGS = (*DURABILITY_SETTINGS, "wal_sync_method", "shared_buffers", "max_wal_size")


def durability_label(meta: dict[str, Any]) -> str:
    """How the report names the server's durability: every figure is read with it."""
    flags = ", ".join(f"{name}={meta.get(name)}" for name in DURABILITY_SETTINGS)
    if meta.get("durable"):
        return f"durable ({flags}, wal_sync_method={meta.get('wal_sync_method')})"
    return f"**DURABILITY OFF** ({flags}): commits skip the WAL flush, figures are not what a durable server gives"


@contextlib.contextmanager
def open_server(database_url: str | None = None, *, durable: bool = True) -> Iterator[Server]:
    """``database_url`` (or DATABASE_URL), else a throwaway embedded PostgreSQL 18,
    durable (PostgreSQL's defaults) unless ``durable=False`` (the test suite's
    settings: fsync, synchronous_commit and full_page_writes off). A server given
    by URL is used as it is; :meth:`Server.describe` reports its settings."""
    url = database_url or os.environ.get("DATABASE_URL", "").strip() or None
    embedded = None
    if url is None:
        from awa.db.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres(settings=DURABLE_SETTINGS if durable else None).start()
        url = embedded.url
    server = Server(url=url, embedded=embedded)
    try:
        yield server
    finally:
        server.close()


# --- the awa-pg side ----------------------------------------------------------


@dataclass
class AwaPgSide:
    """Runs bench/awa_pg_side.py with the awa-pg virtualenv's interpreter."""

    python: Path | None
    unavailable_reason: str | None = None
    version: str | None = None

    @property
    def available(self) -> bool:
        return self.python is not None

    def run(self, command: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        if self.python is None:
            return {"ok": False, "error": self.unavailable_reason}
        # -I: isolated mode, so this repository's own ``awa`` package can never
        # shadow awa-pg's (cwd and PYTHONPATH are not on sys.path).
        with tempfile.TemporaryDirectory(prefix="awa-pg-side-") as cwd:
            try:
                proc = subprocess.run(
                    [str(self.python), "-I", str(AWA_PG_SIDE_SCRIPT)],
                    input=json.dumps(command),
                    capture_output=True,
                    text=True,
                    timeout=timeout_s,
                    cwd=cwd,
                )
            except subprocess.TimeoutExpired:
                return {"ok": False, "error": f"awa-pg side timed out after {timeout_s:.0f}s", "stalled": True}
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if not lines:
            return {"ok": False, "error": f"awa-pg side exited {proc.returncode}: {proc.stderr.strip()[-500:]}"}
        result = json.loads(lines[-1])
        if result.get("awa_pg_version"):
            self.version = result["awa_pg_version"]
        return result


def prepare_awa_pg(*, enabled: bool = True, log=print) -> AwaPgSide:
    """Make (once) ``.bench-venv-awa-pg/`` with awa-pg installed; say why when that fails."""
    if not enabled:
        return AwaPgSide(python=None, unavailable_reason="disabled with --no-awa-pg")
    python = AWA_PG_VENV / "bin" / "python"
    probe = [str(python), "-I", "-c", "import awa, awa._awa; print(awa.AsyncClient.__name__)"]
    with tempfile.TemporaryDirectory() as cwd:
        if python.exists() and subprocess.run(probe, capture_output=True, cwd=cwd).returncode == 0:
            return AwaPgSide(python=python)
        try:
            log(f"bench: creating {AWA_PG_VENV.name}/ and installing {AWA_PG_REQUIREMENT} (once)")
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(AWA_PG_VENV)], check=True, capture_output=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", AWA_PG_REQUIREMENT],
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()
            return AwaPgSide(python=None, unavailable_reason=f"cannot install {AWA_PG_REQUIREMENT}: {detail[-1] if detail else exc}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            return AwaPgSide(python=None, unavailable_reason=f"cannot install {AWA_PG_REQUIREMENT}: {exc}")
        checked = subprocess.run(probe, capture_output=True, text=True, cwd=cwd)
        if checked.returncode != 0:
            return AwaPgSide(python=None, unavailable_reason=f"awa-pg installed but does not import: {checked.stderr.strip()[-300:]}")
    return AwaPgSide(python=python)


# --- machine and results ------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    load = None
    with contextlib.suppress(OSError):
        load = os.getloadavg()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": mem_gib,
        "load_average_at_start": load,
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_results(results: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"bench-{stamp}.json"
    text = json.dumps(results, indent=2, sort_keys=False, default=str)
    path.write_text(text)
    shutil.copyfile(path, directory / "latest.json")
    return path


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def fmt_spread(value: float | None, quartiles: Sequence[float] | None) -> str:
    """``0.93 (0.88–0.99)``: a median ratio with its quartiles, when there are any."""
    if value is None or not quartiles:
        return fmt_ratio(value)
    return f"{value:.2f} ({quartiles[0]:.2f}–{quartiles[1]:.2f})"


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"
