"""UBSCore and the ME as the multi-process (MT) pipeline runs them.

The per-seq driver of engine/driver.py, cut at the process boundary: UBSCore
sequences commands and forwards the accepted ones (`sequence_commands`,
driver step 1), the ME matches them and sends settle messages back
(`match_commands`, step 2), UBSCore applies those (`apply_settles`, step 3).
Each calls the same entry points and room checks as ST.

Determinism (DESIGN.md section 2). While UBSCore sequences seq N, settle
messages of earlier seqs may still be in flight. They can only add to `avail`,
only remove order ids from the lock index and only free lock slots, so:
- a command that passes its checks now passes in ST too: accept at once;
- a rejection that in-flight settles could turn into an acceptance (the
  reasons of `ubscore.TIMING_DEPENDENT_REASONS`, declared beside the rules) is
  undone and retried once every earlier seq is settled (`sequence_commands`
  returns SEQ_BARRIER); the answer then is ST's;
- a move re-locks from the order's remaining quantity and lock, which in-flight
  fills change: it always waits for that barrier.
A cancel/reduce that UBSCore still finds but whose release is in flight is
rejected by the ME with the same event ST's UBSCore would emit.

Progress travels in band: after each batch UBSCore sends a CMD_MARK with its
last seq; the ME echoes it as a SETTLE_MARK after every settle message of
those seqs, so when UBSCore applies the mark, everything up to it is settled.
"""
from .jit import kernel

from . import matching, records as R, ubscore
from .book import ME_PAUSED_TAKER
from .driver import match_room, sequence_room, settle_room
from .emit import N_BALANCE_EVENTS, N_ORDER_EVENTS, emit_settle
from .ubscore import PREFETCH_FAR, PREFETCH_NEAR, PREFETCH_NEXT, UBS_LAST_SEQ, names_order

SEQ_DONE = 0        # every command given was sequenced
SEQ_ROOM = 1        # stopped: an output buffer is low; flush and call again
SEQ_BARRIER = 2     # stopped: the next command must wait until every earlier seq is settled

# A forwarded command may be followed by the mark the caller appends.
_FORWARD_ROOM = 2


@kernel(inline="always")
def _timing_dependent_rejection(out, n_order_events, n_balance_events):
    """Did the command just run (its events start at these counts) get a
    rejection that in-flight settles could change?"""
    if (out.n[N_ORDER_EVENTS] > n_order_events
            and ubscore.is_timing_dependent(out.order_events[n_order_events].reason)):
        return True
    return (out.n[N_BALANCE_EVENTS] > n_balance_events
            and ubscore.is_timing_dependent(out.balance_events[n_balance_events].reason))


@kernel(inline="always")
def _append(dst, n_dst, cmd, seq, ref):
    """dst[n_dst[0]] = cmd with its seq and ref."""
    dst[n_dst[0]] = cmd
    f = dst[n_dst[0]]
    n_dst[0] += 1
    f.seq = seq
    f.ref = ref


@kernel()
def sequence_commands(ubs, out, cmds, start, stop, fwd, n_fwd, log, n_log, settled, limit):
    """UBSCore: sequence cmds[start:stop], check and lock each; append the
    accepted ones to fwd (for the ME) and every one to log (the sequenced
    command log), with seq and ref (-1: not sent to the ME). `settled`: every
    settle of every seq <= settled has been applied; cmds[:limit] are valid
    (for prefetching). Returns (next index, SEQ_*). Leaves room in fwd for the
    mark the caller appends."""
    i = start
    while i < stop:
        ubscore.prefetch_command(ubs, cmds, i, limit)
        if n_fwd[0] + _FORWARD_ROOM > len(fwd) or n_log[0] + 1 > len(log) or not sequence_room(out):
            return i, SEQ_ROOM
        cmd = cmds[i]
        seq = ubs.counters[UBS_LAST_SEQ] + 1
        exact = settled >= seq - 1
        if cmd.kind == R.CMD_MOVE and not exact:
            return i, SEQ_BARRIER
        n_order_events = out.n[N_ORDER_EVENTS]
        n_balance_events = out.n[N_BALANCE_EVENTS]
        ref = ubscore.apply_command(ubs, out, cmd, seq)
        if not exact and _timing_dependent_rejection(out, n_order_events, n_balance_events):
            out.n[N_ORDER_EVENTS] = n_order_events      # the rejection changed nothing: undo it
            out.n[N_BALANCE_EVENTS] = n_balance_events
            return i, SEQ_BARRIER
        ubs.counters[UBS_LAST_SEQ] = seq
        if ref >= 0:
            _append(fwd, n_fwd, cmd, seq, ref)
        _append(log, n_log, cmd, seq, ref)
        i += 1
    return i, SEQ_DONE


@kernel()
def append_mark(fwd, n_fwd, seq):
    """UBSCore: append "every command up to seq has been sent" to fwd."""
    f = fwd[n_fwd[0]]
    n_fwd[0] += 1
    f.seq = seq
    f.kind = R.CMD_MARK
    f.ref = -1
    f.ts = 0        # not a command: no entry time (the slot's last one would be counted in metrics)


@kernel()
def apply_settles(ubs, out, settles, start, stop, settled):
    """UBSCore: apply settles[start:stop] in order; a mark sets settled[0].
    Returns the index of the first one not applied (output buffer low)."""
    for j in range(start, min(stop, start + PREFETCH_FAR)):
        ubscore.prefetch_settle(ubs, settles[j])
    i = start
    while i < stop:
        if i + PREFETCH_FAR < stop:
            ubscore.prefetch_settle(ubs, settles[i + PREFETCH_FAR])
        if not settle_room(out, 1):
            return i
        s = settles[i]
        if s.kind == R.SETTLE_MARK:
            settled[0] = s.seq
        else:
            ubscore.apply_settle(ubs, out, s)
        i += 1
    return i


@kernel(inline="always")
def _prefetch_ahead(me, cmds, i, limit):
    if i + PREFETCH_NEAR < limit and names_order(cmds[i + PREFETCH_NEAR]):
        matching.prefetch_order(me, cmds[i + PREFETCH_NEAR].ref)
    if i + PREFETCH_NEXT < limit and names_order(cmds[i + PREFETCH_NEXT]):
        matching.prefetch_links(me, cmds[i + PREFETCH_NEXT].ref)


@kernel()
def match_commands(me, out, cmds, start, stop, marked, limit):
    """The ME: run the accepted commands cmds[start:stop]; a mark is echoed
    into the settle stream and sets marked[0]. Returns the index of the first
    command not run; stops early when an output buffer is low or a taker
    paused (matching.resume carries it on at the next call)."""
    if matching.resume(me, out):
        return start
    i = start
    while i < stop:
        _prefetch_ahead(me, cmds, i, limit)
        if not match_room(out):
            return i
        cmd = cmds[i]
        seq = cmd.seq
        paused = False
        if cmd.kind == R.CMD_MARK:
            emit_settle(out, R.SETTLE_MARK, seq, 0, 0, 0, 0, 0, 0, -1, -1, 0, 0)
            marked[0] = seq
        else:
            paused = matching.apply_command(me, out, cmd, seq)
        i += 1
        if paused:
            return i
    return i


@kernel()
def matching_idle(me):
    """No taker is paused mid-match."""
    return me.counters[ME_PAUSED_TAKER] < 0
