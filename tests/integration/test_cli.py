"""The `xinf` command as a user runs it: real processes, real files."""
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
XINF = [sys.executable, "-m", "xinfinity.cli"]


def _xinf(*args, cwd=None):
    return subprocess.run(XINF + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_pipeline_st_writes_every_output_file_and_prints_the_summary(tmp_path):
    r = _xinf("pipeline", "st", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "trades=616" in r.stdout and "core_orders_per_sec=" in r.stdout
    for name in ("t2_ledger.csv", "t2_balances_final.csv", "t2_orderbook.csv", "summary.txt",
                 "perf.txt", "events_order.bin", "events_trade.bin", "events_balance.bin",
                 "events_format.txt"):
        assert (tmp_path / name).stat().st_size > 0, name


def test_a_bad_row_stops_the_run_naming_file_line_and_reason(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(ROOT / "fixtures" / "zxi-cancel-1294", data)
    orders = (data / "orders.csv").read_bytes().split(b"\r\n")
    orders[5] = b"5,12,place,buy,84000.123,0.5"        # three decimals, BTC_USDT allows two
    (data / "orders.csv").write_bytes(b"\r\n".join(orders))
    r = _xinf("pipeline", "st", "--input", data, "--out", tmp_path / "out")
    assert r.returncode == 2
    assert "orders.csv:6:" in r.stderr and "84000.123" in r.stderr
    assert not (tmp_path / "out" / "summary.txt").exists()
