"""Progress lines of long runs (runtime/progress.py): throttled, on stderr, quiet for short runs."""
import io
import os
import pathlib
import re
import subprocess
import sys

import pytest

import xinfinity
from xinfinity.runtime import progress
from xinfinity.runtime.progress import Progress, duration, intervals

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = ROOT / "fixtures" / "zxi-cancel-1294"


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _report(first_s=3.0, every_s=10.0):
    clock, out = Clock(), io.StringIO()
    return Progress("pipeline st", first_s, every_s, clock=clock, out=out), clock, out


def _lines(out):
    return out.getvalue().splitlines()


def test_nothing_before_the_first_interval_then_one_line_per_interval():
    p, clock, out = _report()
    p.stage("", total=1000, unit="commands")
    for t, done in ((1, 100), (2.9, 200)):
        clock.t = 100 + t
        p.update(done)
    assert _lines(out) == []
    clock.t = 103
    p.update(300)
    assert len(_lines(out)) == 1
    for t in (5, 8, 12.9):
        clock.t = 100 + t
        p.update(p.done + 10)
    assert len(_lines(out)) == 1            # the next one is due 10 s after the first
    clock.t = 113
    assert p.tick() is not None and len(_lines(out)) == 2


def test_a_line_says_what_how_far_for_how_long_and_how_long_still():
    p, clock, out = _report()
    p.context = "run 2 of 3"
    clock.t = 102
    p.stage("replaying", total=1_000_000, unit="commands", done=100_000, per_s=True)
    clock.t = 130
    p.update(400_000)                       # 300,000 in 28 s
    clock.t = 122
    p.stage("replaying", total=1_000_000, unit="commands", done=100_000, per_s=True)
    clock.t = 142
    p.update(400_000)                       # 300,000 in 20 s: 15,000/s, 600,000 left: 40 s
    assert _lines(out)[1:] == ["xinf pipeline st: run 2 of 3, replaying: 400,000 of 1,000,000 commands "
                               "(40.0%, 15,000/s), 42 s elapsed, ~40 s left"]
    p.stage("", total=10, unit="kills", done=3)
    p.note = "waiting for the server to recover"
    clock.t = 200
    assert p.tick() == ("xinf pipeline st: run 2 of 3, 3 of 10 kills (30%), waiting for the server to recover, "
                        "1 min 40 s elapsed")
    p.context = ""
    p.stage("starting xinf serve")          # a new stage: the note goes, a callable one is asked each time
    p.note = lambda: "its log: serving"
    clock.t = 4000
    assert p.tick() == "xinf pipeline st: starting xinf serve, its log: serving, 1 h 05 min elapsed"


def test_a_short_run_prints_nothing_and_a_long_one_ends_saying_it_is_done():
    p, clock, out = _report()
    p.stage("", total=10, unit="commands")
    clock.t = 102
    p.update(10)
    p.close()
    assert out.getvalue() == ""
    p, clock, out = _report()
    p.stage("writing the output files")
    clock.t = 104
    p.tick()
    clock.t = 105
    p.close()
    assert _lines(out)[-1] == "xinf pipeline st: writing the output files, done in 5 s"
    p, clock, out = _report()               # a failed run does not say it is done
    clock.t = 104
    p.tick()
    p.close(ok=False)
    assert len(_lines(out)) == 1 and "done" not in out.getvalue()


def test_interval_zero_prints_every_change_but_not_the_same_twice_within_a_second():
    p, clock, out = _report(0, 0)
    p.stage("", total=3, unit="runs")
    p.update(1)
    p.tick()                                # nothing new: no line
    clock.t += 0.5
    p.tick()
    assert len(_lines(out)) == 2
    p.update(2)
    assert len(_lines(out)) == 3
    clock.t += 1
    p.tick()                                # a second on: it says it is alive
    assert len(_lines(out)) == 4


def test_the_interval_comes_from_the_environment():
    assert intervals("") == (progress.FIRST_S, progress.EVERY_S)
    assert intervals("2.5") == (2.5, 2.5) and intervals("0") == (0, 0)
    assert intervals("off") is None and intervals("-1") is None
    assert intervals("soon") == (progress.FIRST_S, progress.EVERY_S)
    assert [duration(s) for s in (0.4, 59, 61, 3599, 3661)] == ["0 s", "59 s", "1 min 01 s", "59 min 59 s",
                                                                 "1 h 01 min"]


def test_a_stage_that_compiles_on_a_cold_cache_says_so_once(monkeypatch):
    monkeypatch.setattr(xinfinity, "COLD_CACHE", True)
    monkeypatch.setattr(progress, "_compiled", set())
    monkeypatch.setattr(progress, "_noticed", False)
    p, clock, out = _report(0, 0)
    p.stage("", total=100, unit="commands", compiles="st")
    assert _lines(out) == [progress.NOTICE, "xinf pipeline st: 0 of 100 commands (0%), compiling the numba "
                                            "kernels (the first start of this source tree), 0 s elapsed"]
    clock.t += 60
    p.update(50)
    assert "compiling" not in _lines(out)[-1]
    p.stage("", total=100, unit="commands", compiles="st")     # compiled in this process: not again
    p.stage("starting the processes", compiles="mt")            # another kernel set: no second notice
    assert sum(line == progress.NOTICE for line in _lines(out)) == 1
    assert "compiling" not in _lines(out)[-2] and "compiling" in _lines(out)[-1]
    monkeypatch.setattr(xinfinity, "COLD_CACHE", False)
    p.stage("loading", compiles="load")
    assert "compiling" not in _lines(out)[-1]


def test_only_a_command_xinf_started_reports_and_what_it_calls_joins_its_report(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    with progress.task() as p:
        assert not p.enabled and p._thread is None         # a library call (a test): quiet
    monkeypatch.setattr(progress, "_command", None)
    progress.set_command("bench pipeline")
    try:
        with progress.task() as outer:
            assert outer.enabled and outer.name == "bench pipeline" and outer._thread is not None

            @progress.reported
            def inner():
                return progress.current()
            assert inner() is outer
        assert not outer._thread.is_alive() and progress.current() is not outer
        with progress.task(enabled=False) as quiet:          # --quiet
            assert not quiet.enabled
        monkeypatch.setenv(progress.ENV, "off")
        with progress.task() as off:
            assert not off.enabled
    finally:
        progress.set_command(None)


def _xinf(*args, env=None):
    return subprocess.run([sys.executable, "-m", "xinfinity.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


def _untimed(stdout: str) -> list[str]:
    """stdout's lines, the figures that are times or rates left out."""
    return [line for line in stdout.splitlines() if not re.match(r"\S+(_s|_per_sec)=", line)]


@pytest.mark.slow
def test_pipeline_st_reports_on_stderr_and_leaves_stdout_as_it_was(tmp_path):
    off = _xinf("pipeline", "st", "--input", SMALL, "--out", tmp_path / "a", env={progress.ENV: "off"})
    on = _xinf("pipeline", "st", "--input", SMALL, "--out", tmp_path / "b", env={progress.ENV: "0"})
    assert off.returncode == 0 and on.returncode == 0, off.stderr + on.stderr
    assert "xinf pipeline st:" not in off.stderr
    said = on.stderr.splitlines()
    assert any(line.startswith("xinf pipeline st: loading the dataset, ") for line in said)
    assert any(line.startswith("xinf pipeline st: 1,294 of 1,294 commands (100.0%") for line in said)
    assert re.fullmatch(r"xinf pipeline st: writing the output files, done in \d+ s", said[-1])
    assert _untimed(on.stdout) == _untimed(off.stdout) and "trades=616" in on.stdout


@pytest.mark.slow
def test_pipeline_mt_reports_the_commands_the_me_has_done(tmp_path):
    r = _xinf("pipeline", "mt", "--input", SMALL, "--out", tmp_path, env={progress.ENV: "0"})
    assert r.returncode == 0, r.stderr
    said = r.stderr.splitlines()
    assert "xinf pipeline mt: starting the 4 processes, " in "\n".join(said)
    counts = [int(m[1].replace(",", "")) for m in (re.match(r"xinf pipeline mt: ([\d,]+) of 1,494 commands", s)
                                                    for s in said) if m]
    assert counts and counts == sorted(counts) and counts[-1] == 1494
    assert any("all 1,494 commands matched" in line for line in said)
    assert not any(line.startswith("xinf ") for line in r.stdout.splitlines())
    assert "trades=616" in r.stdout
