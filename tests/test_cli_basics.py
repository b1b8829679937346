"""The command line's contract: help, exit codes, database resolution, migrate."""

from __future__ import annotations

import psycopg
import pytest

from test_cli_helpers import assert_one_line_error, cli_env, run_awa


def test_help_lists_commands_and_exit_codes():
    result = run_awa("--help")
    assert result.returncode == 0
    for command in ("migrate", "enqueue", "work", "stats", "dlq"):
        assert command in result.stdout
    assert "130" in result.stdout and "database not configured or unreachable" in result.stdout


def test_missing_command_is_a_usage_error():
    result = run_awa()
    assert result.returncode == 2
    assert "COMMAND" in result.stderr


def test_unknown_option_is_a_usage_error():
    result = run_awa("migrate", "--no-such-option")
    assert result.returncode == 2


def test_no_database_explains_how_to_get_one():
    result = run_awa("migrate", env=cli_env(None))
    assert result.returncode == 3
    assert_one_line_error(result.stderr)
    assert "--database-url" in result.stderr and "DATABASE_URL" in result.stderr and "--embedded" in result.stderr


def test_unreachable_database_never_prints_the_password():
    url = "postgresql://alice:s3cr3t-pw@127.0.0.1:1/nowhere"
    result = run_awa("migrate", "--database-url", url, env=cli_env(None))
    assert result.returncode == 3
    assert_one_line_error(result.stderr)
    assert "s3cr3t-pw" not in result.stderr + result.stdout
    assert "alice@127.0.0.1:1/nowhere" in result.stderr


def test_database_url_option_wins_over_environment(database_url):
    # DATABASE_URL points nowhere; the flag must be used instead.
    env = cli_env("postgresql://nobody@127.0.0.1:1/nothing")
    result = run_awa("migrate", "--database-url", database_url, env=env)
    assert result.returncode == 0, result.stderr
    assert "schema awa is" in result.stdout


def test_migrate_applies_everything_once(database_factory):
    url = database_factory(migrated=False)
    first = run_awa("migrate", database_url=url)
    assert first.returncode == 0, first.stderr
    assert "applied 0" in first.stdout
    with psycopg.connect(url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM awa.schema_migrations ORDER BY 1")]
    assert versions and versions == sorted(set(versions))
    assert first.stdout.count("applied 0") == len(versions)

    second = run_awa("migrate", database_url=url)
    assert second.returncode == 0
    assert "applied 0" not in second.stdout and "up to date" in second.stdout


def test_migrate_into_another_schema(database_factory):
    url = database_factory(migrated=False)
    result = run_awa("migrate", "--schema", "jobs_x", database_url=url)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(url) as conn:
        (count,) = conn.execute("SELECT count(*) FROM jobs_x.schema_migrations").fetchone()
    assert count >= 1


def test_bad_schema_name_is_a_usage_error_and_changes_nothing(database_factory):
    url = database_factory(migrated=False)
    result = run_awa("migrate", "--schema", "no spaces; drop", database_url=url)
    assert result.returncode == 2
    assert_one_line_error(result.stderr)
    with psycopg.connect(url) as conn:
        (schemas,) = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name NOT LIKE 'pg_%%' "
            "AND schema_name NOT IN ('information_schema', 'public')"
        ).fetchone()
    assert schemas == 0


def test_embedded_and_database_url_are_exclusive():
    result = run_awa("migrate", "--embedded", "--database-url", "postgresql://x@127.0.0.1:1/y", env=cli_env(None))
    assert result.returncode == 2
    assert_one_line_error(result.stderr)


@pytest.mark.slow
def test_migrate_embedded_starts_and_removes_a_server():
    result = run_awa("migrate", "--embedded", env=cli_env(None))
    assert result.returncode == 0, result.stderr
    assert "embedded PostgreSQL at postgresql://" in result.stderr
    assert "applied 0" in result.stdout  # a brand-new server: every migration runs
    url = result.stderr.split("embedded PostgreSQL at ", 1)[1].split()[0]
    with pytest.raises(psycopg.OperationalError):  # stopped when the command exited
        psycopg.connect(url, connect_timeout=3).close()


def test_make_targets_are_not_commands():
    # `make verify` and `make bench` need the source checkout; the installed command has neither.
    for target in ("verify", "bench"):
        result = run_awa(target)
        assert result.returncode == 2
        assert "invalid choice" in result.stderr


def test_console_script_is_installed():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("awa")
    found = str(script) if script.exists() else shutil.which("awa")
    if found is None:
        pytest.skip("package not installed with its console script (pip install -e .)")
    result = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("awa ")
