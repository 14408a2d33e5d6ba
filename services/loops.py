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

Loop state that must survive between calls lives in the int64 array `st`
(indices below), so the shell can read it too.
"""
from ..engine.emit import N_BEV, N_OEV, N_SETTLE, N_TEV
from ..engine.jit import kernel
from ..engine.stages import SEQ_BARRIER, append_mark, me_batch, me_idle, ubs_apply, ubs_sequence
from ..engine.ubscore import U_SEQ
from ..ipc.atomics import cycles, store_release
from ..ipc.ring import ring_consume, ring_publish, ring_take_all
from ..ipc.wait import _should_wake
from ..runtime.control import ME_DONE

IDLE, WAKE, BUDGET = 0, 1, 2
_STALL_NEAR = 512    # commands after a stall during which UBSCore forwards in small chunks
_STALL_CHUNK = 8

# st indices shared by both loops
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
S_WORDS = 24


@kernel(inline="always")
def _publish(ctrl, slots, words, n, st, out_no):
    """Publish words[sent:n] of output out_no; True when all n are out."""
    sent = st[S_SENT + out_no]
    if sent < n:
        k = ring_publish(ctrl, slots, words[sent:n], n - sent)
        if k > 0:
            sent += k
            st[S_SENT + out_no] = sent
            st[S_PUBLISHED] += k
            if _should_wake(ctrl):
                st[S_WAKE] |= 1 << out_no
    return sent == n


@kernel(inline="always")
def _flush(ctrl, slots, words, counts, ci, st, out_no):
    """Publish a buffer whose count is counts[ci]; empty it once all is out."""
    n = counts[ci]
    if _publish(ctrl, slots, words, n, st, out_no):
        if n > 0:
            counts[ci] = 0
            st[S_SENT + out_no] = 0
        return True
    return False


@kernel(inline="always")
def _end_turn(st, work, pub0, polls, max_polls):
    """Count the turn; (polls, IDLE/WAKE to return now, else BUDGET to go on)."""
    if work or st[S_PUBLISHED] != pub0:
        st[S_WORK] += 1
        polls = 0
    else:
        polls += 1
        if polls >= max_polls:
            return polls, IDLE
    if st[S_WAKE] != 0:
        return polls, WAKE
    return polls, BUDGET


def close_outputs(rings, wakers) -> None:
    """Tell each output's consumer that nothing more will come (and wake it)."""
    for ring, waker in zip(rings, wakers):
        ring.close_producer()
        waker.post()


def post_wakes(st, wakers) -> None:
    """Post the semaphores of the consumers the loop found asleep (numba cannot)."""
    mask = int(st[S_WAKE])
    if mask:
        for i, waker in enumerate(wakers):
            if mask & (1 << i):
                waker.post()
        st[S_WAKE] = 0


@kernel(inline="always")
def _take_commands(ctrls, slots, words, max_n, st):
    """A batch from the next source's command ring that has one (round robin,
    so no source starves another); how many records."""
    n_sources = len(ctrls)
    for k in range(n_sources):
        r = (st[S_NEXT_SOURCE] + k) % n_sources
        n = ring_consume(ctrls[r], slots[r], words, max_n)
        if n > 0:
            st[S_NEXT_SOURCE] = r + 1
            return n
    return 0


@kernel()
def ubs_loop(u, out_c, out_s, to_me, n_to_me, log, n_log,
             cmd_ctrls, cmd_slots, cmds, cmd_words, settles_ctrl, settles_slots, sets, settles_words,
             order_ctrl, order_slots, to_me_words, log_ctrl, log_slots, log_words,
             st, chunk, max_polls, budget):
    """UBSCore: settles first (they free the ME and may end a stall), then up
    to `chunk` commands unless one is waiting, taken from the sources' command
    rings (tuples cmd_ctrls, cmd_slots) in turn, a batch at a time; outputs are published every
    turn, so a full ring never stops the settles (no deadlock with the ME).
    UBSCore's own events only serve its checks here (settlement's replica
    writes them): they are dropped each turn."""
    polls = 0
    settled = st[S_SETTLED:S_SETTLED + 1]
    for _ in range(budget):
        pub0 = st[S_PUBLISHED]
        work = False
        # -- settles
        if st[S_IN2_HEAD] == st[S_IN2_TAIL]:
            st[S_IN2_HEAD] = 0
            st[S_IN2_TAIL] = ring_consume(settles_ctrl, settles_slots, settles_words, len(sets))
        if st[S_IN2_HEAD] < st[S_IN2_TAIL]:
            h = ubs_apply(u, out_s, sets, st[S_IN2_HEAD], st[S_IN2_TAIL], settled)
            out_s.n[N_BEV] = 0
            work |= h != st[S_IN2_HEAD]
            st[S_SETTLES] += h - st[S_IN2_HEAD]
            st[S_IN2_HEAD] = h
        # -- commands
        seq = u.ctr[U_SEQ]
        if st[S_STALL_SINCE] != 0 and st[S_SETTLED] >= seq:
            st[S_STALL_CYCLES] += cycles() - st[S_STALL_SINCE]
            st[S_STALL_SINCE] = 0
        if st[S_STALL_SINCE] == 0 and (st[S_STOP_AT] == 0 or seq < st[S_STOP_AT]):
            if st[S_IN_HEAD] == st[S_IN_TAIL]:
                st[S_IN_HEAD] = 0
                st[S_IN_TAIL] = _take_commands(cmd_ctrls, cmd_slots, cmd_words, len(cmds), st)
            if st[S_IN_HEAD] < st[S_IN_TAIL]:
                # Near recent stalls, forward in small chunks: the ME starts on
                # them while UBSCore sequences on, so the next stall is shorter.
                n = chunk if seq - st[S_STALL_SEQ] > _STALL_NEAR else min(chunk, _STALL_CHUNK)
                h, status = ubs_sequence(u, out_c, cmds, st[S_IN_HEAD],
                                         min(st[S_IN_TAIL], st[S_IN_HEAD] + n),
                                         to_me, n_to_me, log, n_log, st[S_SETTLED], st[S_IN_TAIL])
                out_c.n[N_OEV] = 0
                out_c.n[N_BEV] = 0
                work |= h != st[S_IN_HEAD]
                st[S_IN_HEAD] = h
                seq = u.ctr[U_SEQ]
                if seq > st[S_MARKED]:
                    append_mark(to_me, n_to_me, seq)
                    st[S_MARKED] = seq
                if status == SEQ_BARRIER:
                    st[S_STALL_SINCE] = max(cycles(), 1)
                    st[S_STALLS] += 1
                    st[S_STALL_BEHIND] += seq - st[S_SETTLED]
                    st[S_STALL_SEQ] = seq
        f0 = _flush(order_ctrl, order_slots, to_me_words, n_to_me, 0, st, 0)
        f1 = _flush(log_ctrl, log_slots, log_words, n_log, 0, st, 1)
        st[S_FLUSHED] = 1 if (f0 and f1) else 0
        polls, status = _end_turn(st, work, pub0, polls, max_polls)
        if status != BUDGET:
            return status
    return BUDGET


@kernel()
def me_loop(me, out, marked, order_ctrl, order_slots, cmds, cmd_words,
            orders_ctrl, orders_slots, orders_words, trades_ctrl, trades_slots, trades_words,
            settles_ctrl, settles_slots, settles_words, me_settles_ctrl, me_settles_slots, me_settles_words,
            control, st, chunk, max_polls, budget):
    """The ME: run accepted commands, publish order and trade events, and the
    settle messages to both UBSCore and settlement; vouch (ME_DONE) for every
    seq up to the last mark once all of its outputs are out."""
    polls = 0
    for _ in range(budget):
        pub0 = st[S_PUBLISHED]
        work = False
        idle = me_idle(me)
        if st[S_IN_HEAD] == st[S_IN_TAIL] and idle:
            st[S_IN_HEAD] = 0
            st[S_IN_TAIL] = ring_consume(order_ctrl, order_slots, cmd_words, len(cmds))
        if st[S_IN_HEAD] < st[S_IN_TAIL] or not idle:
            n0 = out.n[N_OEV] + out.n[N_TEV] + out.n[N_SETTLE]
            h = me_batch(me, out, cmds, st[S_IN_HEAD], min(st[S_IN_TAIL], st[S_IN_HEAD] + chunk),
                         marked, st[S_IN_TAIL])
            work |= h != st[S_IN_HEAD] or out.n[N_OEV] + out.n[N_TEV] + out.n[N_SETTLE] != n0
            st[S_IN_HEAD] = h
        f0 = _flush(orders_ctrl, orders_slots, orders_words, out.n, N_OEV, st, 0)
        f1 = _flush(trades_ctrl, trades_slots, trades_words, out.n, N_TEV, st, 1)
        n = out.n[N_SETTLE]
        f2 = _publish(settles_ctrl, settles_slots, settles_words, n, st, 2)
        f3 = _publish(me_settles_ctrl, me_settles_slots, me_settles_words, n, st, 3)
        if f2 and f3 and n > 0:
            out.n[N_SETTLE] = 0
            st[S_SENT + 2] = 0
            st[S_SENT + 3] = 0
        flushed = f0 and f1 and f2 and f3
        if flushed and marked[0] > st[S_VOUCHED]:
            st[S_VOUCHED] = marked[0]
            store_release(control, ME_DONE, marked[0])
        st[S_FLUSHED] = 1 if flushed else 0
        polls, status = _end_turn(st, work, pub0, polls, max_polls)
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
