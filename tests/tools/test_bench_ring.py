"""`xinf bench ring` runs end to end on small sizes and prints its figures
(each run inside it checks every message arrived once, in order)."""
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_ring_prints_every_figure():
    r = subprocess.run([sys.executable, "-m", "xinfinity.cli", "bench", "ring",
                        "--messages", "200000", "--latency-samples", "300", "--litmus", "300000"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    keys = [line.split("=")[0] for line in r.stdout.splitlines() if "=" in line]
    assert "litmus_messages=300000" in r.stdout
    for k in ("ring_msgs_per_sec", "faster_fifo_msgs_per_sec", "mp_queue_msgs_per_sec",
              "ratio_vs_faster_fifo", "spin_p50_ns", "spin_p999_ns", "block_p50_ns"):
        assert k in keys
    assert "Traceback" not in r.stderr
