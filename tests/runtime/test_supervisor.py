"""The supervisor: a dead or hung process stops the pipeline with an error
that names it; a stop request drains cleanly; nothing is left in /dev/shm."""
import os
import pathlib
import signal
import time

import pytest

from xinfinity.config import Capacity, Pipeline
from xinfinity.runtime.supervisor import PipelineError, Supervisor
from xinfinity.runtime.topology import DATASET
from xinfinity.edge.dataset import load_dataset
from xinfinity.app.mt import _builders

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ds():
    return load_dataset(ROOT / "fixtures" / "zxi-cancel-1294")


def leftovers():
    return sorted(p.name for p in pathlib.Path("/dev/shm").iterdir()
                  if p.name.startswith((f"xinf-{os.getpid()}-", f"sem.xinf-{os.getpid()}-")))


def builders(ds, tmp_path, **replace):
    b = _builders(ds, None, "release", Capacity(), tmp_path)
    b.update(replace)
    return b


@pytest.mark.slow
def test_clean_run_leaves_nothing_behind(ds, tmp_path):
    stats = Supervisor(Pipeline(), builders(ds, tmp_path)).run()
    assert stats["pipeline"]["t_end"] > stats["pipeline"]["t_start"] > 0
    assert all(stats[n]["state"] == 3 for n in DATASET.names)
    assert leftovers() == []


@pytest.mark.slow
def test_killed_process_is_named_and_the_rest_stopped(ds, tmp_path):
    sup = Supervisor(Pipeline(), builders(ds, tmp_path))

    def kill_matching(w):
        os.kill(int(w.control.proc("matching")["pid"]), signal.SIGKILL)

    with pytest.raises(PipelineError, match=r"^matching \(pid \d+\) was killed by signal SIGKILL"):
        sup.run(on_ready=kill_matching)
    assert all(not p.is_alive() for p in sup.procs.values())
    assert leftovers() == []


@pytest.mark.slow
def test_failing_process_is_named_with_its_exit_status(ds, tmp_path):
    def broken(w, stats):
        raise ValueError("no state for you")

    sup = Supervisor(Pipeline(), builders(ds, tmp_path, ubscore=broken))
    with pytest.raises(PipelineError, match=r"^ubscore \(pid \d+\) exited with status 1 \(state failed\)"):
        sup.run()
    assert all(not p.is_alive() for p in sup.procs.values())
    assert leftovers() == []


class _Hangs:
    done = False

    def step(self):
        time.sleep(3600)


@pytest.mark.slow
def test_hung_process_is_detected_by_its_heartbeat(ds, tmp_path):
    # 5 s: long enough that a process merely starved of CPU on a loaded
    # machine still beats (0.5 s named a starved UBSCore), short for a test.
    sup = Supervisor(Pipeline(heartbeat_timeout_s=5), builders(ds, tmp_path, settlement=lambda w, s: _Hangs()))
    t0 = time.monotonic()
    with pytest.raises(PipelineError, match=r"^settlement \(pid \d+\) stopped responding: no heartbeat for 5 s"):
        sup.run()
    assert time.monotonic() - t0 < 120, "the hang was not detected while the run lasted"
    assert leftovers() == []


@pytest.mark.slow
def test_stop_request_drains_every_ring(ds, tmp_path):
    """Stopped before the first command: ingestion ends its stream at once and
    every process still finishes cleanly, having drained its inputs."""
    sup = Supervisor(Pipeline(), builders(ds, tmp_path))
    stats = sup.run(on_ready=lambda w: sup.stop())
    assert all(stats[n]["state"] == 3 for n in DATASET.names)
    assert leftovers() == []


def test_each_process_runs_on_the_cores_the_config_gives_it(ds, tmp_path):
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two cores")
    want = {"ingestion": [cores[1]], "ubscore": [cores[0]], "matching": [cores[1]], "journal": [cores[1]],
            "settlement": [cores[0]]}
    real = builders(ds, tmp_path)

    def checked(name):
        def build(w, stats):
            got = sorted(os.sched_getaffinity(0))
            if got != want[name]:
                raise AssertionError(f"{name} runs on {got}, config says {want[name]}")
            return real[name](w, stats)
        return build

    stats = Supervisor(Pipeline(cores=want), {n: checked(n) for n in want}).run()
    assert all(stats[n]["state"] == 3 for n in want)
