"""runtime/topology.py: the one declaration of the pipeline's processes and
rings, and what the wiring and the control block make of it."""
import pytest

from xinfinity.config import Pipeline
from xinfinity.engine import records as R
from xinfinity.runtime.topology import DATASET, command_ring, pipeline, settlement_log
from xinfinity.runtime.wiring import Wiring


@pytest.mark.parametrize("topology", [DATASET, pipeline(journal=False), pipeline(("a", "b", "c"))],
                         ids=["dataset", "no-journal", "three-sources"])
def test_every_ring_joins_two_declared_processes_and_every_process_is_fed(topology):
    names = set(topology.names)
    assert len(names) == len(topology.names), "a process is declared twice"
    assert len({r.name for r in topology.rings}) == len(topology.rings), "a ring is declared twice"
    for r in topology.rings:
        assert r.producer in names and r.consumer in names and r.producer != r.consumer, r
    for p in topology.processes:
        if p.source:
            assert not topology.inputs(p.name) and [r.name for r in topology.outputs(p.name)] == [command_ring(p.name)]
        else:
            assert topology.inputs(p.name), f"{p.name} has no input"


def test_with_a_journal_settlement_sees_only_what_the_journal_forwards():
    assert settlement_log(DATASET) == "durable_log"
    assert [r.consumer for r in DATASET.rings if r.name == "log"] == ["journal"]
    bare = pipeline(journal=False)
    assert "journal" not in bare.names and settlement_log(bare) == "log"


def test_each_source_has_its_own_command_ring_into_ubscore():
    t = pipeline(("gw0", "gw1"))
    assert t.sources == ("gw0", "gw1")
    assert [(r.name, r.record, r.consumer) for r in t.inputs("ubscore") if r.record == R.CMD] == [
        ("cmd.gw0", R.CMD, "ubscore"), ("cmd.gw1", R.CMD, "ubscore")]


def test_sources_must_be_distinct_and_present():
    with pytest.raises(ValueError, match="distinct"):
        pipeline(("a", "a"))
    with pytest.raises(ValueError, match="at least one"):
        pipeline(())


def test_the_wiring_opens_exactly_the_declared_rings_and_a_stats_line_per_process():
    t = pipeline(("gw0", "gw1"))
    w = Wiring.create(Pipeline(ring_capacity=16), topology=t)
    try:
        assert sorted(w.rings) == sorted(r.name for r in t.rings)
        for r in t.rings:
            assert w.rings[r.name].dtype == r.record
        assert len(w.control.procs) == len(t.names)
        for i, name in enumerate(t.names):
            w.control.proc(name)["pid"] = 1000 + i
        assert list(w.control.procs["pid"]) == [1000 + i for i in range(len(t.names))]
    finally:
        w.close()


def test_more_sources_than_ubscores_loop_takes_are_refused():
    from xinfinity.runtime.topology import MAX_SOURCES
    pipeline(tuple(f"gw{k}" for k in range(MAX_SOURCES)))
    with pytest.raises(ValueError, match=f"at most {MAX_SOURCES}"):
        pipeline(tuple(f"gw{k}" for k in range(MAX_SOURCES + 1)))
