"""The polling loops of UBSCore and the ME, compiled.

A loop in Python costs some microseconds per turn (every numba call unboxes
the state's arrays); UBSCore's stalls are a round trip through the ME, so
that cost would be paid on every one. These kernels poll the rings, run the
state machines of engine/stages.py, publish, and vouch for progress, all
inside numba, and return to the Python shell only when:

- IDLE: nothing to do for `max_polls` turns (the shell may sleep);
- WAKE: a consumer said it sleeps on a ring just published to (the shell
  posts its semaphore; numba cannot);
- BUDGET: `budget` turns passed (the shell beats its heartbeat).

Loop state that must survive between calls lives in the int64 array `loop_state`
(indices below), so the shell can read it too.
"""
from ..engine.emit import N_BALANCE_EVENTS, N_ORDER_EVENTS, N_SETTLES, N_TRADE_EVENTS
from ..engine.jit import kernel
from ..engine.stages import (SEQ_BARRIER, append_mark, apply_settles, match_commands, matching_idle,
                             sequence_commands)
from ..engine.ubscore import UBS_LAST_SEQ
from ..ipc.atomics import cycles, store_release
from ..ipc.ring import ring_consume, ring_publish, ring_take_all
from ..ipc.wait import _should_wake
from ..runtime.control import ME_DONE
from ..runtime.metrics import record_cmds
from ..runtime.topology import MAX_SOURCES

IDLE, WAKE, BUDGET = 0, 1, 2
_STALL_NEAR = 512    # commands after a stall during which UBSCore forwards in small chunks
_STALL_CHUNK = 8

# loop_state indices shared by both loops
S_IN_HEAD = 0        # first input record not yet worked through
S_IN_TAIL = 1
S_IN2_HEAD = 2       # UBSCore's second input (settles)
S_IN2_TAIL = 3
S_SENT = 4           # 4..7: records of each output already published (output number)
S_PUBLISHED = 8      # records published, all outputs (progress detector)
S_WAKE = 9           # bit per output whose consumer must be posted
S_WORK = 10          # turns that did work
S_FLUSHED = 11       # 1 when nothing is waiting to be published
S_SETTLED = 12       # UBSCore: every settle of every seq <= this is applied
S_MARKED = 13        # last mark sent (UBSCore) or echoed (ME)
S_VOUCHED = 14       # last seq vouched for on the control block
S_STOP_AT = 15       # UBSCore: sequence nothing past this seq (0: no stop); a snapshot's cut
S_STALL_SINCE = 16   # UBSCore: cycle count when the waiting command began to wait, 0: none
S_STALLS = 17
S_STALL_CYCLES = 18
S_STALL_BEHIND = 19  # UBSCore: sum over stalls of the seqs not yet settled when each began
S_SETTLES = 20       # UBSCore: settle messages applied
S_STALL_SEQ = 21     # UBSCore: seq sequenced when the last stall began
S_NEXT_SOURCE = 22   # UBSCore: the command ring to take from next (round robin over the sources)
S_SOURCES = 23       # UBSCore: how many of the source tuple's rings are real (the rest pad it)
S_WORDS = 24


@kernel(inline="always")
def _publish(ctrl, slots, words, n, loop_state, out_no):
    """Publish words[sent:n] of output out_no; True when all n are out."""
    sent = loop_state[S_SENT + out_no]
    if sent < n:
        k = ring_publish(ctrl, slots, words[sent:n], n - sent)
        if k > 0:
            sent += k
            loop_state[S_SENT + out_no] = sent
            loop_state[S_PUBLISHED] += k
            if _should_wake(ctrl):
                loop_state[S_WAKE] |= 1 << out_no
    return sent == n


@kernel(inline="always")
def _flush(ctrl, slots, words, counts, ci, loop_state, out_no):
    """Publish a buffer whose count is counts[ci]; empty it once all is out."""
    n = counts[ci]
    if _publish(ctrl, slots, words, n, loop_state, out_no):
        if n > 0:
            counts[ci] = 0
            loop_state[S_SENT + out_no] = 0
        return True
    return False


@kernel(inline="always")
def _end_turn(loop_state, work, pub0, polls, max_polls):
    """Count the turn; (polls, IDLE/WAKE to return now, else BUDGET to go on)."""
    if work or loop_state[S_PUBLISHED] != pub0:
        loop_state[S_WORK] += 1
        polls = 0
    else:
        polls += 1
        if polls >= max_polls:
            return polls, IDLE
    if loop_state[S_WAKE] != 0:
        return polls, WAKE
    return polls, BUDGET


def close_outputs(rings, wakers) -> None:
    """Tell each output's consumer that nothing more will come (and wake it)."""
    for ring, waker in zip(rings, wakers):
        ring.close_producer()
        waker.post()


def post_wakes(loop_state, wakers) -> None:
    """Post the semaphores of the consumers the loop found asleep (numba cannot)."""
    mask = int(loop_state[S_WAKE])
    if mask:
        for i, waker in enumerate(wakers):
            if mask & (1 << i):
                waker.post()
        loop_state[S_WAKE] = 0


@kernel(inline="always")
def _take_commands(ctrls, slots, words, max_n, loop_state):
    """A batch from the next source's command ring that has one (round robin,
    so no source starves another); how many records. The tuples always hold
    MAX_SOURCES rings, the first S_SOURCES of them real: one compiled loop
    serves any number of sources."""
    assert len(ctrls) == MAX_SOURCES
    n_sources = loop_state[S_SOURCES]
    for k in range(n_sources):
        r = (loop_state[S_NEXT_SOURCE] + k) % n_sources
        n = ring_consume(ctrls[r], slots[r], words, max_n)
        if n > 0:
            loop_state[S_NEXT_SOURCE] = r + 1
            return n
    return 0


@kernel()
def ubscore_loop(ubs, out_c, out_s, to_me, n_to_me, log, n_log,
                 cmd_ctrls, cmd_slots, cmds, cmd_words, settles_ctrl, settles_slots, sets, settles_words,
                 order_ctrl, order_slots, to_me_words, log_ctrl, log_slots, log_words,
                 loop_state, chunk, hist, hist_row, clock, max_polls, budget):
    """UBSCore: settles first (they free the ME and may end a stall), then up
    to `chunk` commands unless one is waiting, taken from the sources' command
    rings (tuples cmd_ctrls, cmd_slots) in turn, a batch at a time; outputs are published every
    turn, so a full ring never stops the settles (no deadlock with the ME).
    UBSCore's own events only serve its checks here (settlement's replica
    writes them): they are dropped each turn. Each chunk sequenced is
    recorded in metrics row hist_row (runtime/metrics.py: entry time to sequenced)."""
    polls = 0
    settled = loop_state[S_SETTLED:S_SETTLED + 1]
    for _ in range(budget):
        pub0 = loop_state[S_PUBLISHED]
        work = False
        # -- settles
        if loop_state[S_IN2_HEAD] == loop_state[S_IN2_TAIL]:
            loop_state[S_IN2_HEAD] = 0
            loop_state[S_IN2_TAIL] = ring_consume(settles_ctrl, settles_slots, settles_words, len(sets))
        if loop_state[S_IN2_HEAD] < loop_state[S_IN2_TAIL]:
            h = apply_settles(ubs, out_s, sets, loop_state[S_IN2_HEAD], loop_state[S_IN2_TAIL], settled)
            out_s.n[N_BALANCE_EVENTS] = 0
            work |= h != loop_state[S_IN2_HEAD]
            loop_state[S_SETTLES] += h - loop_state[S_IN2_HEAD]
            loop_state[S_IN2_HEAD] = h
        # -- commands
        seq = ubs.counters[UBS_LAST_SEQ]
        if loop_state[S_STALL_SINCE] != 0 and loop_state[S_SETTLED] >= seq:
            loop_state[S_STALL_CYCLES] += cycles() - loop_state[S_STALL_SINCE]
            loop_state[S_STALL_SINCE] = 0
        if loop_state[S_STALL_SINCE] == 0 and (loop_state[S_STOP_AT] == 0 or seq < loop_state[S_STOP_AT]):
            if loop_state[S_IN_HEAD] == loop_state[S_IN_TAIL]:
                loop_state[S_IN_HEAD] = 0
                loop_state[S_IN_TAIL] = _take_commands(cmd_ctrls, cmd_slots, cmd_words, len(cmds), loop_state)
            if loop_state[S_IN_HEAD] < loop_state[S_IN_TAIL]:
                # Near recent stalls, forward in small chunks: the ME starts on
                # them while UBSCore sequences on, so the next stall is shorter.
                n = chunk if seq - loop_state[S_STALL_SEQ] > _STALL_NEAR else min(chunk, _STALL_CHUNK)
                h, status = sequence_commands(ubs, out_c, cmds, loop_state[S_IN_HEAD],
                                              min(loop_state[S_IN_TAIL], loop_state[S_IN_HEAD] + n),
                                              to_me, n_to_me, log, n_log, loop_state[S_SETTLED],
                                              loop_state[S_IN_TAIL])
                out_c.n[N_ORDER_EVENTS] = 0
                out_c.n[N_BALANCE_EVENTS] = 0
                record_cmds(hist, hist_row, clock, cmds, loop_state[S_IN_HEAD], h)
                work |= h != loop_state[S_IN_HEAD]
                loop_state[S_IN_HEAD] = h
                seq = ubs.counters[UBS_LAST_SEQ]
                if seq > loop_state[S_MARKED]:
                    append_mark(to_me, n_to_me, seq)
                    loop_state[S_MARKED] = seq
                if status == SEQ_BARRIER:
                    loop_state[S_STALL_SINCE] = max(cycles(), 1)
                    loop_state[S_STALLS] += 1
                    loop_state[S_STALL_BEHIND] += seq - loop_state[S_SETTLED]
                    loop_state[S_STALL_SEQ] = seq
        f0 = _flush(order_ctrl, order_slots, to_me_words, n_to_me, 0, loop_state, 0)
        f1 = _flush(log_ctrl, log_slots, log_words, n_log, 0, loop_state, 1)
        loop_state[S_FLUSHED] = 1 if (f0 and f1) else 0
        polls, status = _end_turn(loop_state, work, pub0, polls, max_polls)
        if status != BUDGET:
            return status
    return BUDGET


@kernel()
def matching_loop(me, out, marked, order_ctrl, order_slots, cmds, cmd_words,
                  orders_ctrl, orders_slots, orders_words, trades_ctrl, trades_slots, trades_words,
                  settles_ctrl, settles_slots, settles_words, me_settles_ctrl, me_settles_slots, me_settles_words,
                  control, loop_state, chunk, hist, hist_row, clock, max_polls, budget):
    """The ME: run accepted commands, publish order and trade events, and the
    settle messages to both UBSCore and settlement; vouch (ME_DONE) for every
    seq up to the last mark once all of its outputs are out. Each chunk matched
    is recorded in metrics row hist_row (entry time to matched)."""
    polls = 0
    for _ in range(budget):
        pub0 = loop_state[S_PUBLISHED]
        work = False
        idle = matching_idle(me)
        if loop_state[S_IN_HEAD] == loop_state[S_IN_TAIL] and idle:
            loop_state[S_IN_HEAD] = 0
            loop_state[S_IN_TAIL] = ring_consume(order_ctrl, order_slots, cmd_words, len(cmds))
        if loop_state[S_IN_HEAD] < loop_state[S_IN_TAIL] or not idle:
            n0 = out.n[N_ORDER_EVENTS] + out.n[N_TRADE_EVENTS] + out.n[N_SETTLES]
            h = match_commands(me, out, cmds, loop_state[S_IN_HEAD],
                               min(loop_state[S_IN_TAIL], loop_state[S_IN_HEAD] + chunk), marked, loop_state[S_IN_TAIL])
            record_cmds(hist, hist_row, clock, cmds, loop_state[S_IN_HEAD], h)
            work |= (h != loop_state[S_IN_HEAD]
                     or out.n[N_ORDER_EVENTS] + out.n[N_TRADE_EVENTS] + out.n[N_SETTLES] != n0)
            loop_state[S_IN_HEAD] = h
        f0 = _flush(orders_ctrl, orders_slots, orders_words, out.n, N_ORDER_EVENTS, loop_state, 0)
        f1 = _flush(trades_ctrl, trades_slots, trades_words, out.n, N_TRADE_EVENTS, loop_state, 1)
        n = out.n[N_SETTLES]
        f2 = _publish(settles_ctrl, settles_slots, settles_words, n, loop_state, 2)
        f3 = _publish(me_settles_ctrl, me_settles_slots, me_settles_words, n, loop_state, 3)
        if f2 and f3 and n > 0:
            out.n[N_SETTLES] = 0
            loop_state[S_SENT + 2] = 0
            loop_state[S_SENT + 3] = 0
        flushed = f0 and f1 and f2 and f3
        if flushed and marked[0] > loop_state[S_VOUCHED]:
            loop_state[S_VOUCHED] = marked[0]
            store_release(control, ME_DONE, marked[0])
        loop_state[S_FLUSHED] = 1 if flushed else 0
        polls, status = _end_turn(loop_state, work, pub0, polls, max_polls)
        if status != BUDGET:
            return status
    return BUDGET


@kernel()
def settle_take(ctrls, slots, bufs, pos):
    """Settlement: take everything its four input rings hold (in engine/replica P_* order). Returns
    -1, or the stream whose buffer is full and must grow first."""
    for p in range(4):
        if not ring_take_all(ctrls[p], slots[p], bufs[p], pos, p):
            return p
    return -1
