"""Benchmark: finops sync and report on N million FOCUS rows, against DuckDB and pandas doing the same work.

    python benchmarks/bench.py --rows 10000000            # needs: pip install -e '.[bench]'

Every figure is a whole process (start-up included), timed with a wall clock, with its peak memory (max RSS)
from wait4(). The data is generated into benchmarks/data/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import re
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FINOPS = [sys.executable, "-m", "finops_cli"]

GENERATE = """
COPY (
  SELECT
    'payer-1' AS BillingAccountId, 'Acme' AS BillingAccountName, 'USD' AS BillingCurrency,
    'acct-' || (i % 40) AS SubAccountId, 'account ' || (i % 40) AS SubAccountName,
    CAST(round(random() * 10, 6) AS DECIMAL(18, 6)) AS BilledCost,
    CAST(round(random() * 10, 6) AS DECIMAL(18, 6)) AS EffectiveCost,
    CAST(round(random() * 12, 6) AS DECIMAL(18, 6)) AS ListCost,
    CAST(round(random() * 11, 6) AS DECIMAL(18, 6)) AS ContractedCost,
    TIMESTAMP '2024-01-01' + INTERVAL (i % 90) DAY AS ChargePeriodStart,
    TIMESTAMP '2024-01-02' + INTERVAL (i % 90) DAY AS ChargePeriodEnd,
    TIMESTAMP '2024-01-01' AS BillingPeriodStart, TIMESTAMP '2024-04-01' AS BillingPeriodEnd,
    'Usage' AS ChargeCategory, 'Usage-Based' AS ChargeFrequency, 'Standard' AS PricingCategory,
    'AWS' AS ProviderName, 'Amazon Web Services, Inc.' AS PublisherName, 'Amazon Web Services, Inc.' AS InvoiceIssuerName,
    'Service ' || (i % 60) AS ServiceName, 'Compute' AS ServiceCategory,
    'us-east-' || (i % 4) AS RegionId, 'res-' || (i % 200000) AS ResourceId,
    CASE WHEN i % 11 = 0 THEN MAP {'env': 'prod'}
         ELSE MAP {'team': 'team-' || (i % 25), 'project': 'p-' || (i % 80), 'environment': 'prod',
                   'cost_center': 'cc-' || (i % 9), 'owner': 'o' || (i % 30)} END AS Tags
  FROM range({rows}) t(i)
) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 122880)
"""


def generate_sql(rows: int, path: Path) -> str:
    """A FOCUS 1.2 file as exports write it: all 57 columns, the ones an aggregated provider lacks left null."""
    from finops_cli.focus.schema import FOCUS_12

    sql = GENERATE.replace("{rows}", str(rows)).replace("{path}", str(path))
    filled = set(re.findall(r"\bAS (\w+)", sql))
    missing = [c for c in FOCUS_12 if c.name not in filled]
    nulls = "".join(f", CAST(NULL AS {'VARCHAR' if c.type == 'MAP(VARCHAR, VARCHAR)' else c.type}) AS {c.name}"
                    for c in missing)
    return sql.replace("  FROM range(", f"  {nulls[2:]}\n  FROM range(", 1).replace(
        "END AS Tags\n", "END AS Tags,\n", 1)

RAW_QUERY = ("SELECT Tags['team'] AS team, ServiceName, SUM(EffectiveCost) FROM read_parquet('{path}') "
             "WHERE ChargePeriodStart >= TIMESTAMP '2024-01-01' AND ChargePeriodStart < TIMESTAMP '2024-04-01' "
             "GROUP BY ALL")
RAW_COPY = "CREATE TABLE t AS SELECT * FROM read_parquet('{path}')"

PANDAS = """
import sys, pandas as pd
df = pd.read_parquet(sys.argv[1], columns=['Tags', 'ServiceName', 'EffectiveCost'])
df['team'] = df['Tags'].map(lambda tags: dict(tags).get('team') if tags is not None else None)
print(len(df.groupby(['team', 'ServiceName'], dropna=False)['EffectiveCost'].sum()))
"""


def run(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def best(cmd, repeat, setup=None, env=None):
    runs = []
    for _ in range(repeat):
        if setup:
            setup()
        runs.append(run(cmd, env))
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()

    import duckdb

    data = HERE / "data"
    data.mkdir(exist_ok=True)
    parquet = data / f"focus12_{args.rows}.parquet"
    if not parquet.exists():
        t = time.perf_counter()
        with duckdb.connect() as con:
            con.execute(generate_sql(args.rows, parquet))
        print(f"generated {args.rows:,} rows -> {parquet} ({parquet.stat().st_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="finops-bench-"))
    config = work / "finops.yaml"
    config.write_text(f"store: {work / 'store.duckdb'}\nsources:\n  - {{name: bench, type: focus, path: {parquet}}}\n")

    def fresh_store():
        for suffix in ("", ".wal", ".lock"):
            Path(f"{work / 'store.duckdb'}{suffix}").unlink(missing_ok=True)

    def fresh_copy():
        Path(work / "copy.duckdb").unlink(missing_ok=True)

    results = {}
    results["finops sync"] = best(FINOPS + ["-c", str(config), "sync"], args.repeat, fresh_store)
    results["duckdb parquet->table copy"] = best(
        [sys.executable, "-c", f"import duckdb; duckdb.connect('{work / 'copy.duckdb'}').execute(\"{RAW_COPY.format(path=parquet)}\")"],
        args.repeat, fresh_copy)
    report = FINOPS + ["-c", str(config), "report", "--by", "team", "--by", "service", "--start", "2024-01-01",
                       "--end", "2024-04-01", "--no-refresh", "--format", "json"]
    results["finops report --by team --by service"] = best(report, args.repeat)
    results["duckdb raw query over parquet"] = best(
        [sys.executable, "-c", f"import duckdb; print(len(duckdb.sql(\"{RAW_QUERY.format(path=parquet)}\").fetchall()))"],
        args.repeat)
    if not args.skip_pandas:
        results["pandas read + groupby"] = best([sys.executable, "-c", PANDAS, str(parquet)], 1)

    sync, copy = results["finops sync"][0], results["duckdb parquet->table copy"][0]
    rep, raw = results["finops report --by team --by service"][0], results["duckdb raw query over parquet"][0]
    print(f"\n{args.rows:,} rows, best of {args.repeat}, whole processes, {os.cpu_count()} cores\n")
    print("| command | seconds | peak MB |\n|---|---:|---:|")
    for name, (seconds, mb) in results.items():
        print(f"| {name} | {seconds:.2f} | {mb:.0f} |")
    print(f"\nsync / duckdb copy = {sync / copy:.2f}x (target <= 2)")
    print(f"report / duckdb raw query = {rep / raw:.2f}x (target <= 1.5)")
    if "pandas read + groupby" in results:
        print(f"pandas / report = {results['pandas read + groupby'][0] / rep:.1f}x (target >= 10)")
    print(json.dumps({k: {"seconds": round(v[0], 3), "peak_mb": round(v[1])} for k, v in results.items()}),
          file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
