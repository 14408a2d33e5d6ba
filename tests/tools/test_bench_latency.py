"""`xinf bench latency`, small: every rate and policy gets a row from a real paced pipeline run, every
rate a baseline row, the plot is written, and the closing lines carry the figures of the 100,000/s run."""
from __future__ import annotations

import argparse
import re

from xinfinity.app.st import ROOT
from xinfinity.tools import bench_latency


def test_the_bench_reports_each_rate_and_ends_with_the_closing_lines(tmp_path, capsys):
    p = argparse.ArgumentParser()
    bench_latency.add_arguments(p)
    args = p.parse_args(["--input", str(ROOT / "fixtures" / "zxi-cancel-1294"), "--rates", "20000,100000",
                         "--seconds", "0.05", "--policies", "every_batch,interval_ms", "--gateway-rates", "",
                         "--plot", str(tmp_path / "lat.png")])
    assert bench_latency.main(args) == 0
    out = capsys.readouterr().out
    for policy in ("every_batch", "interval_ms"):
        for rate in ("20,000", "100,000"):
            assert re.search(rf"{policy} +offered +{rate}/s achieved", out), out
    assert out.count("result out us: p50") == 4 + 2 and out.count("durable    us: p50") == 4   # 2: the baseline
    for rate in ("20,000", "100,000"):
        assert re.search(rf"baseline +offered +{rate}/s \([\d,]+ orders, one process, no WAL\)", out), out
    core = re.search(r"^core_p99_us_at_100000=([0-9.]+)$", out, re.M)
    durable = re.search(r"^durable_p99_us_at_100000_every_batch=([0-9.]+)$", out, re.M)
    st = re.search(r"^st_core_p99_us_at_100000=([0-9.]+)$", out, re.M)
    assert core and durable and st and min(float(x.group(1)) for x in (core, durable, st)) > 0, out
    assert (tmp_path / "lat.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
