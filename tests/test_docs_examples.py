"""Every code block in README.md and docs/*.md runs, so the docs cannot rot.

Conventions for writing docs (also in docs/verification.md):

* Each document runs top to bottom in its own empty working directory against
  its own freshly migrated database; ``DATABASE_URL`` points at it and the
  ``awa`` command is on ``PATH``.
* ```python blocks are executed in order in one namespace per document (a
  later block may use names from an earlier one).
* ```sh / ```bash blocks run with ``bash -euo pipefail``; lines that run a
  make target (``make …``, ``python -m bench``, ``python -m scripts.verify``)
  are skipped: they take minutes and have their own checks; ``cwd=repo`` in the
  info string runs the block in the repository root (read-only commands).
* A block with ``file=NAME`` in its info string (```python file=shop_tasks.py,
  ```toml file=worker.toml, ```jsonl file=orders.jsonl) is written to NAME
  in the working directory instead of being run; python files are compiled,
  TOML/JSON/JSON-lines files parsed.
* ```toml / ```json blocks without ``file=`` are parsed; ```sql blocks are
  executed against the document's database.
* ```text blocks are program output and are not run. ``no-run`` in the info
  string skips a block; keep those rare (each one is listed by
  ``test_no_run_blocks_are_rare``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)(.*)$")
RUN_LANGS = {"python", "sh", "bash", "toml", "json", "jsonl", "sql"}
PASSIVE_LANGS = {"text", "", "console-output", "tla"}
MAX_NO_RUN = 3
# Commands that are make targets (or the same thing spelled differently): minutes
# long, with their own checks (make verify, bench smoke tests), so docs only show them.
TARGET_COMMANDS = ("make ", "python -m bench", "python -m scripts.verify")
BLOCK_TIMEOUT = 180  # seconds; a doc example that waits for ever must fail, not hang the suite


@contextlib.contextmanager
def _time_limit(seconds: int, block: "Block"):
    """SIGALRM-based limit (tests run in the main thread of their process, also under xdist)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"{block.where}: python block still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Block:
    path: Path
    line: int  # line number of the opening fence
    lang: str
    options: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def file_name(self) -> str | None:
        match = re.search(r"\bfile=(\S+)", self.options)
        return match.group(1) if match else None

    @property
    def no_run(self) -> bool:
        return "no-run" in self.options.split()


def blocks_of(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, lang, options = i + 1, match.group(1).lower(), match.group(2).strip()
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{path.name}:{start}: code fence is never closed")
        blocks.append(Block(path, start, lang, options, "\n".join(body) + "\n"))
        i += 1
    return blocks


def _existing_docs() -> list[Path]:
    return [p for p in DOCS if p.exists()]


def test_docs_exist_and_have_code():
    names = {p.name for p in _existing_docs()}
    for required in ("README.md", "getting-started.md", "configuration.md", "operations.md", "verification.md"):
        assert required in names, f"missing doc {required}"
    assert sum(len(blocks_of(p)) for p in _existing_docs()) >= 10


def test_every_block_has_a_known_language():
    for path in _existing_docs():
        for block in blocks_of(path):
            assert block.lang in RUN_LANGS | PASSIVE_LANGS, f"{block.where}: unknown block language {block.lang!r}"


def test_no_run_blocks_are_rare():
    skipped = [b.where for p in _existing_docs() for b in blocks_of(p) if b.no_run]
    assert len(skipped) <= MAX_NO_RUN, f"too many no-run blocks: {skipped}"


def _shell(block: Block, cwd: Path, env: dict[str, str]) -> None:
    script = "\n".join(line for line in block.code.splitlines() if not line.lstrip().startswith(TARGET_COMMANDS))
    if not script.strip():
        return
    if re.search(r"\bcwd=repo\b", block.options):
        cwd = ROOT  # read-only repository commands (scripts/run-tlc.sh, python -m verification.mirrors)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, (
        f"{block.where}: shell block failed (exit {result.returncode})\n--- script\n{script}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def _write_file(block: Block, cwd: Path) -> None:
    name = block.file_name
    assert name and "/" not in name, f"{block.where}: file= must be a plain file name"
    (cwd / name).write_text(block.code, encoding="utf-8")
    if block.lang == "python":
        compile(block.code, f"{block.where} ({name})", "exec")
    elif block.lang == "toml":
        tomllib.loads(block.code)
    elif block.lang == "json":
        json.loads(block.code)
    elif block.lang == "jsonl":
        for line in block.code.splitlines():
            if line.strip():
                json.loads(line)


@pytest.mark.parametrize("doc", _existing_docs(), ids=lambda p: p.name)
def test_doc_examples_run(doc: Path, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env = {k: v for k, v in os.environ.items() if k != "AWA_DEBUG"}
    env["DATABASE_URL"] = database_url
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in blocks_of(doc):
        if block.no_run or block.lang in PASSIVE_LANGS:
            continue
        if block.file_name:
            _write_file(block, tmp_path)
        elif block.lang == "python":
            code = compile(block.code, block.where, "exec")
            with _time_limit(BLOCK_TIMEOUT, block):
                exec(code, namespace)  # noqa: S102 - running our own documentation is the point
        elif block.lang in {"sh", "bash"}:
            _shell(block, tmp_path, env)
        elif block.lang == "toml":
            tomllib.loads(block.code)
        elif block.lang == "json":
            json.loads(block.code)
        elif block.lang == "sql":
            with psycopg.connect(database_url) as conn:
                conn.execute(block.code)


def test_adr_index_lists_every_adr_and_every_link_resolves():
    adr_dir = ROOT / "docs" / "adr"
    index = (adr_dir / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((\d{4}-[a-z0-9-]+\.md)\)", index))
    present = {p.name for p in adr_dir.glob("[0-9][0-9][0-9][0-9]-*.md")}
    assert linked == present, f"index links {sorted(linked - present)} missing files; unlisted {sorted(present - linked)}"
    for name in present:
        text = (adr_dir / name).read_text(encoding="utf-8")
        for section in ("## Status", "## Context", "## Decision", "## Consequences", "## Alternatives"):
            assert section in text, f"{name}: no {section!r} section"


def test_relative_links_in_docs_resolve():
    for path in _existing_docs():
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            assert (path.parent / target).exists(), f"{path.relative_to(ROOT)}: broken link {target}"
