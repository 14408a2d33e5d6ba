"""The `xinf` command as a user runs it: real processes, real files."""
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
XINF = [sys.executable, "-m", "xinfinity.cli"]


def _figures(stdout: str) -> dict[str, str]:
    """The key=value lines a command prints (its figures)."""
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line and " " not in line)


def _xinf(*args, cwd=None):
    return subprocess.run(XINF + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.slow
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


@pytest.mark.slow
def test_pipeline_mt_writes_the_files_of_st_and_per_process_figures(tmp_path):
    r = _xinf("pipeline", "mt", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--out", tmp_path,
              "--wait", "block")
    assert r.returncode == 0, r.stderr
    assert "trades=616" in r.stdout and "mt_orders_per_sec=" in r.stdout and "wait=block" in r.stdout
    perf = (tmp_path / "perf.txt").read_text()
    for key in ("ubscore.stalls=", "matching.cpu_s=", "settlement.work_s="):
        assert key in perf


@pytest.mark.slow
def test_parity_prints_a_verdict_per_file_and_fails_on_a_difference(tmp_path):
    r = _xinf("parity", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--out", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert sum(": OK: identical" in line for line in lines) == 8
    assert lines[-1] == "parity=passed files=8 different=0"
    # The comparison itself: one changed byte in one file is found and named.
    from xinfinity.tools.parity import compare_dirs
    ledger = tmp_path / "mt" / "t2_ledger.csv"
    data = bytearray(ledger.read_bytes())
    data[-3] ^= 1
    ledger.write_bytes(bytes(data))
    (tmp_path / "mt" / "events_trade.bin").write_bytes((tmp_path / "st" / "events_trade.bin").read_bytes()[:-96])
    verdicts = {name: (ok, detail) for name, ok, detail in compare_dirs(tmp_path / "st", tmp_path / "mt")}
    assert verdicts["t2_ledger.csv"][0] is False and verdicts["t2_ledger.csv"][1].startswith("differs at line ")
    assert verdicts["events_trade.bin"] == (False, "differs at st has 616 records, mt 615")
    assert sum(ok for ok, _ in verdicts.values()) == 6


@pytest.mark.slow
def test_bench_pipeline_prints_st_mt_and_their_ratio():
    r = _xinf("bench", "pipeline", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--repeat", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    keys = _figures(r.stdout)
    assert int(keys["st_orders_per_sec"]) > 0 and int(keys["mt_orders_per_sec"]) > 0
    assert float(keys["mt_over_st"]) > 0


@pytest.mark.slow
def test_run_starts_the_pipeline_processes_on_the_bundled_dataset(tmp_path):
    r = _xinf("run", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "multi-process pipeline" in r.stdout and "trades=" in r.stdout
    assert "ubscore.cpu_s=" in r.stdout and (tmp_path / "t2_ledger.csv").exists()


@pytest.mark.slow
def test_a_bad_pipeline_config_stops_before_any_process_naming_file_and_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    for text, expect in (("pipeline:\n  wait: fast\n", "Invalid enum value 'fast' - at `$.pipeline.wait`"),
                         ("pipeline:\n  ring_capacity: 1000\n", "ring_capacity 1000 is not a power of two - at `$.pipeline`"),
                         ("pipeline:\n  cores: {gatway: [0]}\n", "Invalid enum value 'gatway' - at `key` in `$.pipeline.cores`"),
                         ("pipeline:\n  fsync: sometimes\n", "Invalid enum value 'sometimes' - at `$.pipeline.fsync`"),
                         ("pipeline:\n  fsync_interval_ms: 0\n", "Expected `int` >= 1 - at `$.pipeline.fsync_interval_ms`"),
                         ("pipeline:\n  ringcap: 8\n", "unknown field `ringcap`")):
        cfg.write_text(text)
        r = _xinf("pipeline", "mt", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--out", tmp_path / "o",
                  "--config", cfg)
        assert r.returncode == 2 and f"xinf: bad config: {cfg}" in r.stderr and expect in r.stderr, r.stderr
        assert not (tmp_path / "o" / "summary.txt").exists()


@pytest.mark.slow
def test_replay_rebuilds_every_output_file_from_the_wal_alone(tmp_path):
    r = _xinf("pipeline", "st", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--out", tmp_path / "st",
              "--wal", tmp_path / "wal")
    assert r.returncode == 0, r.stderr
    r = _xinf("replay", "--wal", tmp_path / "wal", "--out", tmp_path / "replay")
    assert r.returncode == 0, r.stderr
    assert "wal_commands=" in r.stdout and "torn_bytes=0" in r.stdout and "replay_commands_per_sec=" in r.stdout
    from xinfinity.tools.parity import compare_dirs
    verdicts = compare_dirs(tmp_path / "st", tmp_path / "replay")
    assert len(verdicts) == 8 and all(ok for _, ok, _ in verdicts), verdicts
    # The same directory is not written twice.
    r = _xinf("pipeline", "st", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--out", tmp_path / "st2",
              "--wal", tmp_path / "wal")
    assert r.returncode == 2 and "already holds a WAL" in r.stderr


@pytest.mark.slow
def test_replay_of_a_torn_wal_reports_the_cut_and_replays_the_intact_prefix(tmp_path):
    r = _xinf("pipeline", "st", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--out", tmp_path / "st",
              "--wal", tmp_path / "wal")
    assert r.returncode == 0, r.stderr
    from xinfinity.engine.wal import RECORD_BYTES
    wal = tmp_path / "wal" / "wal.log"
    n = wal.stat().st_size // RECORD_BYTES
    with open(wal, "r+b") as f:
        f.truncate((n - 2) * RECORD_BYTES + 50)                     # a crash in the middle of a write
    r = _xinf("replay", "--wal", tmp_path / "wal", "--out", tmp_path / "replay")
    assert r.returncode == 0, r.stderr
    assert "last 50 bytes were a torn record" in r.stdout and f"wal_commands={n - 2}" in r.stdout
    assert "orders=1292" in (tmp_path / "replay" / "perf.txt").read_text()


@pytest.mark.slow
def test_replay_of_a_corrupt_wal_stops_naming_file_and_offset(tmp_path):
    _xinf("pipeline", "st", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--out", tmp_path / "st",
          "--wal", tmp_path / "wal")
    from xinfinity.engine.wal import RECORD_BYTES
    wal = tmp_path / "wal" / "wal.log"
    data = bytearray(wal.read_bytes())
    data[100 * RECORD_BYTES + 40] ^= 4
    wal.write_bytes(bytes(data))
    r = _xinf("replay", "--wal", tmp_path / "wal", "--out", tmp_path / "replay")
    assert r.returncode == 2
    assert f"{wal}: corrupt record at byte offset {100 * RECORD_BYTES}: checksum mismatch" in r.stderr


@pytest.mark.slow
def test_bench_wal_prints_both_policies_and_their_ratio():
    r = _xinf("bench", "wal", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--repeat", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    keys = _figures(r.stdout)
    assert int(keys["mt_every_batch_orders_per_sec"]) > 0 and int(keys["mt_off_orders_per_sec"]) > 0
    assert float(keys["every_batch_over_off"]) > 0


@pytest.mark.slow
def test_recover_prints_the_state_rebuilt_from_snapshot_and_wal(tmp_path):
    r = _xinf("pipeline", "st", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--out", tmp_path / "st",
              "--wal", tmp_path / "wal", "--snapshot-every", "1000")
    assert r.returncode == 0, r.stderr
    r = _xinf("recover", "--wal", tmp_path / "wal")
    assert r.returncode == 0, r.stderr
    keys = _figures(r.stdout)
    assert int(keys["snapshot_seq"]) > 0 and keys["next_seq"] == str(int(keys["wal_commands"]) + 1)


@pytest.mark.slow
def test_drill_crash_prints_a_line_per_kill_and_the_verdict(tmp_path):
    r = _xinf("drill", "crash", "--input", ROOT / "fixtures" / "zxi-cancel-1294", "--out", tmp_path / "out",
              "--kills", 2, "--seed", 1)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sum(line.startswith("kill ") and line.endswith(" OK") for line in lines) == 2
    assert lines[-2] == "files=8 identical_to_st=8"
    assert lines[-1].startswith("drills_passed=2/2 lost=0 duplicated=0 recovery_p50_ms=")
    assert (tmp_path / "out" / "t2_orderbook.csv").exists()
