"""The state machines cut at the process boundary (engine/stages.py) and
settlement's replica (engine/replica.py), driven directly."""
import numpy as np

from tests.cmds import batch, deposit, limit, move
from tests.engine.test_scenarios import ASSETS, BTC, BTC_USDT, FEES, SMALL, USDT, symbols
from xinfinity.engine import records as R
from xinfinity.engine.core import Core, build_ubs
from xinfinity.engine.emit import N_BALANCE_EVENTS, N_ORDER_EVENTS, new_out
from xinfinity.engine.replica import (RS_DIVERGED, REPLAY_DIVERGED, REPLAY_DONE, replay)
from xinfinity.engine.stages import SEQ_BARRIER, SEQ_DONE, sequence_commands
from xinfinity.engine.ubscore import (FINAL_REASONS, SETTLE_BALANCE_EVENTS, TIMING_DEPENDENT_REASONS,
                                      UBS_LAST_SEQ, is_timing_dependent)

REASON_CODES = {name: getattr(R, name) for name in dir(R) if name.startswith("R_")}


def test_every_reason_code_is_declared_either_timing_dependent_or_final():
    timing, final = set(TIMING_DEPENDENT_REASONS), set(FINAL_REASONS)
    assert not timing & final, f"declared both ways: {sorted(timing & final)}"
    unclassified = {name for name, code in REASON_CODES.items() if code not in timing | final}
    assert not unclassified, f"add these to ubscore.TIMING_DEPENDENT_REASONS or FINAL_REASONS: {sorted(unclassified)}"
    assert timing | final == set(REASON_CODES.values()), "a declared reason is not an R_* code of records"


def test_the_stages_retry_exactly_the_reasons_declared_timing_dependent():
    for name, code in REASON_CODES.items():
        assert is_timing_dependent(code) == (code in TIMING_DEPENDENT_REASONS), name


class Ubs:
    def __init__(self):
        self.ubs = build_ubs(ASSETS, symbols(), R.DUST_RELEASE, SMALL)
        self.out = new_out()
        self.fwd = np.zeros(16, R.CMD)
        self.log = np.zeros(16, R.CMD)
        self.nf = np.zeros(1, np.int64)
        self.nl = np.zeros(1, np.int64)

    def seq(self, cmds, settled):
        i, status = sequence_commands(self.ubs, self.out, cmds, 0, len(cmds), self.fwd, self.nf,
                                 self.log, self.nl, settled, len(cmds))
        return int(i), int(status)

    def snapshot(self):
        return (self.ubs.balances.copy(), self.ubs.locks.copy(), self.ubs.counters.copy(), self.out.n.copy(),
                int(self.nf[0]), int(self.nl[0]))


def test_a_rejection_that_pending_fills_could_change_waits_and_changes_nothing():
    s = Ubs()
    assert s.seq(batch(deposit(7, USDT, 100)), 0) == (1, SEQ_DONE)
    before = s.snapshot()
    cmds = batch(limit(1, 7, "buy", 10, 20, BTC_USDT))         # costs 200 > 100
    assert s.seq(cmds, settled=0) == (0, SEQ_BARRIER)           # seq 1 not settled yet
    after = s.snapshot()
    for a, b in zip(before, after):
        assert np.array_equal(a, b)
    # Once every earlier seq is settled, the answer is final: rejected, logged, not forwarded.
    assert s.seq(cmds, settled=1) == (1, SEQ_DONE)
    assert s.ubs.counters[UBS_LAST_SEQ] == 2
    assert s.out.order_events[s.out.n[N_ORDER_EVENTS] - 1]["reason"] == R.R_INSUFFICIENT_BALANCE
    assert s.nf[0] == 0 and s.nl[0] == 2 and s.log[1]["seq"] == 2 and s.log[1]["ref"] == -1


def test_an_acceptance_never_waits():
    s = Ubs()
    s.seq(batch(deposit(7, USDT, 1000)), 0)
    assert s.seq(batch(limit(1, 7, "buy", 10, 20, BTC_USDT)), settled=0) == (1, SEQ_DONE)
    assert s.nf[0] == 1 and s.fwd[0]["seq"] == 2 and s.fwd[0]["ref"] >= 0
    assert s.log[1]["ref"] == s.fwd[0]["ref"]


def test_a_move_always_waits_for_every_earlier_seq():
    s = Ubs()
    s.seq(batch(deposit(7, USDT, 1000), limit(1, 7, "buy", 10, 20, BTC_USDT)), 0)
    n_bev = s.out.n[N_BALANCE_EVENTS]
    assert s.seq(batch(move(1, 7, 11, BTC_USDT)), settled=1) == (0, SEQ_BARRIER)
    assert s.out.n[N_BALANCE_EVENTS] == n_bev and s.ubs.counters[UBS_LAST_SEQ] == 2
    assert s.seq(batch(move(1, 7, 11, BTC_USDT)), settled=2) == (1, SEQ_DONE)


def test_the_replica_reports_a_decision_that_differs_from_ubscores():
    """A log that says UBSCore accepted a place the replica must reject."""
    u = build_ubs(ASSETS, symbols(), R.DUST_RELEASE, SMALL)
    log = batch(deposit(7, USDT, 100), limit(1, 7, "buy", 10, 20, BTC_USDT))
    log["seq"] = [1, 2]
    log["ref"] = [-1, 3]                                        # "accepted, sent to the ME as ref 3"
    empty_set, empty_oev, empty_tev = (np.zeros(0, R.SETTLE), np.zeros(0, R.ORDER_EVENT),
                                       np.zeros(0, R.TRADE_EVENT))
    pos = np.array([0, 2, 0, 0, 0, 0, 0, 0], np.int64)
    rs = np.zeros(4, np.int64)
    out = new_out()
    code = replay(u, out, np.full(16, -1, np.int32), log, empty_set, empty_oev, empty_tev, pos, 10, rs)
    assert code == REPLAY_DIVERGED and rs[RS_DIVERGED] == 2
    log["ref"][1] = -1                                          # the truthful log replays
    u = build_ubs(ASSETS, symbols(), R.DUST_RELEASE, SMALL)
    pos[:] = [0, 2, 0, 0, 0, 0, 0, 0]
    rs[:] = 0
    assert replay(u, new_out(), np.full(16, -1, np.int32), log, empty_set, empty_oev, empty_tev,
                  pos, 10, rs) == REPLAY_DONE
    assert pos[0] == 2


def test_a_fill_with_both_fees_and_a_price_improvement_emits_the_declared_worst_case_of_balance_events():
    """ubscore.SETTLE_BALANCE_EVENTS bounds every room check of settles: the
    worst trade (two fees, a refund) must need exactly that many, no more."""
    core = Core(ASSETS, symbols(maker_ppm=1000, taker_ppm=1000, fee_user=FEES), R.DUST_RELEASE, SMALL)
    core.apply(batch(deposit(1, USDT, 1000), deposit(2, BTC, 1000), limit(1, 2, "sell", 10, 100, BTC_USDT)))
    ev = core.apply(batch(limit(2, 1, "buy", 12, 50, BTC_USDT)))      # fills at 10, refunds 2 * 50
    assert len(ev.trades) == 1
    of_trade = ev.balances[ev.balances["trade_id"] == ev.trades[0]["trade_id"]]
    assert len(of_trade) == SETTLE_BALANCE_EVENTS
