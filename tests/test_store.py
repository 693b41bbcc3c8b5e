"""The store's promises: atomic replace, a ledger of every sync, and one process at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import write_config


def make_parquet(path: Path, rows: int, amount: str = "1.25") -> None:
    import duckdb

    with duckdb.connect() as con:
        con.execute(f"""COPY (SELECT 'acct' AS BillingAccountId, CAST('{amount}' AS DECIMAL(18,6)) AS BilledCost,
            CAST('{amount}' AS DECIMAL(18,6)) AS EffectiveCost, 'USD' AS BillingCurrency,
            TIMESTAMP '2024-05-01' + INTERVAL (i % 28) DAY AS ChargePeriodStart,
            TIMESTAMP '2024-05-02' + INTERVAL (i % 28) DAY AS ChargePeriodEnd, 'Usage' AS ChargeCategory,
            'svc' || (i % 50) AS ServiceName, 'Acme' AS ProviderName,
            MAP {{'team': 't' || (i % 7)}} AS Tags FROM range({rows}) t(i)) TO '{path}' (FORMAT parquet)""")


def store_total(store_path: Path) -> tuple[Decimal, int]:
    import duckdb

    with duckdb.connect(str(store_path), read_only=True) as con:
        total, count = con.execute("SELECT SUM(BilledCost), count(*) FROM costs").fetchone()
    return total or Decimal(0), count


def ledger(store_path: Path) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(store_path), read_only=True) as con:
        return con.execute("SELECT source, status, rows, error FROM ledger ORDER BY load_id").fetchall()


@pytest.fixture
def project(tmp_path):
    make_parquet(tmp_path / "costs.parquet", 1000)
    config = write_config(tmp_path, "store: s.duckdb\nsources:\n  - {name: files, type: focus, path: costs.parquet}\n")
    return tmp_path, config


def finops_process(config: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "finops_cli", "-c", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_sync_killed_mid_way_leaves_the_earlier_data(project):
    folder, config = project
    first = finops_process(config, "sync")
    assert first.wait(60) == 0, first.stderr.read()
    before = store_total(folder / "s.duckdb")
    assert before == (Decimal("1250"), 1000)

    make_parquet(folder / "costs.parquet", 4_000_000, amount="2.00")  # takes seconds to load
    victim = finops_process(config, "sync")
    time.sleep(2.0)
    assert victim.poll() is None, "the sync finished before it could be killed: make the file bigger"
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)

    assert store_total(folder / "s.duckdb") == before
    # the next process marks the dead sync as interrupted, then syncs normally
    make_parquet(folder / "costs.parquet", 10, amount="3.00")
    again = finops_process(config, "sync")
    assert again.wait(60) == 0, again.stderr.read()
    statuses = [row[1] for row in ledger(folder / "s.duckdb")]
    assert statuses == ["ok", "interrupted", "ok"]
    assert store_total(folder / "s.duckdb") == (Decimal("30"), 10)


def test_overlapping_processes_wait_for_each_other(project):
    folder, config = project
    procs = [finops_process(config, "sync") for _ in range(3)]
    procs.append(finops_process(config, "report", "--by", "team", "--period", "2024-05", "--format", "json"))
    outputs = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _, _ in outputs), outputs
    assert store_total(folder / "s.duckdb") == (Decimal("1250"), 1000)
    assert [row[1] for row in ledger(folder / "s.duckdb")].count("ok") >= 3
    report = json.loads(outputs[-1][1])
    assert Decimal(report["total"]) == Decimal("1250")


def test_a_locked_store_gives_a_clear_error_after_the_timeout(project, finops):
    from finops_cli.store.lock import StoreLock

    folder, config = project
    lock = StoreLock(folder / "s.duckdb", timeout=1)
    lock.acquire()
    try:
        result = finops("-c", config, "--lock-timeout", "0.3", "sync")
    finally:
        lock.release()
    assert result.exit_code == 3
    assert "is busy: another finops process" in result.stderr and f"pid {os.getpid()}" in result.stderr
    assert finops("-c", config, "sync").exit_code == 0


def test_the_ledger_records_every_sync(project, finops):
    folder, config = project
    assert finops("-c", config, "sync").exit_code == 0
    (folder / "costs.parquet").write_text("garbage")
    assert finops("-c", config, "sync").exit_code == 3
    rows = ledger(folder / "s.duckdb")
    assert rows[0][:3] == ("files", "ok", 1000)
    assert rows[1][1] == "failed" and "costs.parquet" in rows[1][3]
    listing = finops("-c", config, "sources", "ledger")
    assert listing.exit_code == 0 and "failed" in listing.stdout and "1,000" in listing.stdout


def test_default_store_is_under_xdg_data_home(tmp_path, finops, isolated_home):
    make_parquet(tmp_path / "costs.parquet", 5)
    config = write_config(tmp_path, "sources:\n  - {name: files, type: focus, path: costs.parquet}\n")
    assert finops("-c", config, "sync").exit_code == 0
    assert (isolated_home / ".local" / "share" / "finops" / "finops.duckdb").is_file()
    other = tmp_path / "elsewhere.duckdb"
    assert finops("-c", config, "--store", other, "sync").exit_code == 0
    assert store_total(other)[1] == 5
