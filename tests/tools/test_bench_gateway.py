"""`xinf bench gateway` runs end to end against a real server on a short ladder,
prints its figures, and the orders it counted as acknowledged are in the
server's order store."""
import re
import sqlite3
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_gateway_acknowledged_orders_are_in_the_store(tmp_path):
    keep = tmp_path / "bench"
    r = subprocess.run([sys.executable, "-m", "xinfinity.cli", "bench", "gateway", "--rates", "200",
                        "--seconds", "2", "--connections", "4", "--policies", "every_batch", "--kinds", "ed25519",
                        "--keep", str(keep)],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "Traceback" not in r.stderr
    lines = r.stdout.strip().splitlines()
    assert [line.split("=")[0] for line in lines[-3:]] == [
        "max_sustained_orders_per_sec", "max_sustained_orders_per_sec_hmac", "p99_ack_ms_at_1000"]
    assert lines[-2] == "max_sustained_orders_per_sec_hmac=n/a"     # no HMAC ladder was asked for
    assert lines[-1] == "p99_ack_ms_at_1000=n/a"                    # nor a 1000/s rate
    assert re.fullmatch(r"max_sustained_orders_per_sec=(0|200)", lines[-3])
    acked = int(re.search(r"^orders_acked_total=(\d+)$", r.stdout, re.M).group(1))
    assert acked > 0
    assert "checked: user" in r.stdout
    # Every acknowledged order is a row of the server's order store (read after the server stopped).
    with sqlite3.connect(keep / "every_batch" / "orders.db") as db:
        stored = db.execute("SELECT count(*) FROM orders WHERE symbol_id = 0").fetchone()[0]
    assert stored >= acked
    assert not (keep / "every_batch" / "serve.json").exists()     # the server was stopped
