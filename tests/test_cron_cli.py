"""``awa cron list/pause/resume/delete`` against real PostgreSQL (in process)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from awa.cli import main
from awa.client import Client


@dataclass
class Nightly:
    scope: str


def test_cron_list_pause_resume_delete(database_url, capsys):
    assert main(["cron", "list", "--database-url", database_url]) == 0
    assert capsys.readouterr().out == "no periodic jobs\n"
    with Client(database_url) as c:
        c.periodic("nightly", "0 3 * * *", Nightly, Nightly("all"), timezone="Europe/Berlin", queue="ops")
        c.sync_cron_jobs()
    assert main(["cron", "list", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[0], out.splitlines()[2]
    assert header.split() == ["name", "cron", "timezone", "kind", "queue", "missed", "fires", "last", "fire",
                              "next", "fire"]
    assert row.startswith("nightly") and "Europe/Berlin" in row and "coalesce" in row and "UTC" in row
    assert main(["cron", "pause", "nightly", "--database-url", database_url]) == 0
    assert capsys.readouterr().out == "paused nightly\n"
    assert main(["cron", "list", "--json", "--database-url", database_url]) == 0
    [line] = capsys.readouterr().out.splitlines()
    data = json.loads(line)
    assert data["name"] == "nightly" and data["paused_by"] == "awa cron pause" and data["next_fire_at"]
    assert main(["cron", "resume", "nightly", "--database-url", database_url]) == 0
    assert capsys.readouterr().out == "resumed nightly\n"
    assert main(["cron", "delete", "nightly", "--database-url", database_url]) == 0
    assert capsys.readouterr().out == "deleted nightly\n"
    assert main(["cron", "delete", "nightly", "--database-url", database_url]) == 1
    assert capsys.readouterr().out == "no periodic job named 'nightly'\n"
