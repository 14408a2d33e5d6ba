"""`xinf dashboard` on a dataset run (`xinf pipeline mt --out DIR`): the run leaves
OUT/metrics.json while it goes on, and a frame read through it shows its stages."""
from __future__ import annotations

import argparse
import pathlib
import re

import pytest

from xinfinity.app.mt import METRICS_HANDLE, run_mt
from xinfinity.config import Pipeline
from xinfinity.tools import dashboard

ROOT = pathlib.Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_a_dataset_run_is_found_through_its_out_dir_and_shows_its_stages(tmp_path, capsys):
    out = tmp_path / "out"
    frames = []

    def watch(sup):
        if not frames and sup.metrics.gauge("commands") > 50_000:
            assert dashboard.main(argparse.Namespace(data_dir=str(out), once=True, interval=0.5)) == 0
            frames.append(capsys.readouterr().out)

    run_mt(ROOT / "fixtures" / "zxi-100k", out, pipeline=Pipeline(wait="block"), watch=watch)
    assert frames, "the run ended before a frame was taken"
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+(\d+)\s", frames[0], re.M)}
    assert all(counts.get(s, 0) > 0 for s in ("ubscore", "match", "settle")), frames[0]
    assert "wal" not in counts            # no WAL, no journal: no such stage
    assert not (out / METRICS_HANDLE).exists()
    assert dashboard.main(argparse.Namespace(data_dir=str(out), once=True, interval=0.5)) == 1
    assert "no running instance" in capsys.readouterr().err


def test_metrics_switched_off_leave_every_count_at_zero(tmp_path, capsys):
    out = tmp_path / "out"
    frames = []

    def watch(sup):
        if not frames and sup.wiring.control.proc("settlement")["steps"] > 3:
            dashboard.main(argparse.Namespace(data_dir=str(out), once=True, interval=0.5))
            frames.append(capsys.readouterr().out)

    run_mt(ROOT / "fixtures" / "zxi-100k", out, pipeline=Pipeline(wait="block", metrics=False), watch=watch)
    assert frames and "metrics off" in frames[0]
    assert all(int(m.group(1)) == 0 for m in re.finditer(r"^\S+\s+(\d+)\s", frames[0], re.M)), frames[0]
