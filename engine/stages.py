"""The UBSCore and ME state machines as the multi-process (MT) pipeline runs them.

The same functions as the ST kernel (ubs_place, me_place, ...), cut at the
process boundary: UBSCore sequences commands and forwards the accepted ones,
the ME matches them and sends settle messages back, UBSCore applies those.

Determinism (DESIGN.md section 2). While UBSCore sequences seq N, settle
messages of earlier seqs may still be in flight. They can only add to `avail`,
only remove order ids from the lock index and only free lock slots, so:
- a command that passes its checks now passes in ST too: accept at once;
- a rejection that in-flight settles could turn into an acceptance
  (insufficient balance, duplicate order id, no free order slot) is undone and
  retried once every earlier seq is settled (`ubs_sequence` returns
  SEQ_BARRIER); the answer then is ST's;
- a move re-locks from the order's remaining quantity and lock, which in-flight
  fills change: it always waits for that barrier.
A cancel/reduce that UBSCore still finds but whose release is in flight is
rejected by the ME with the same event ST's UBSCore would emit.

Progress travels in band: after each batch UBSCore sends a CMD_MARK with its
last seq; the ME echoes it as a SETTLE_MARK after every settle message of
those seqs, so when UBSCore applies the mark, everything up to it is settled.
"""
from .jit import kernel

from . import records as R
from .book import C_PENDING
from .emit import N_BEV, N_OEV, N_SETTLE, N_TEV, emit_settle
from .matching import me_command, me_prefetch_links, me_prefetch_order, me_resume
from .ubscore import (PREFETCH_FAR, PREFETCH_NEAR, PREFETCH_NEXT, U_SEQ, names_order, ubs_command,
                      ubs_prefetch, ubs_prefetch_settle, ubs_settle_one)

SEQ_DONE = 0        # every command given was sequenced
SEQ_ROOM = 1        # stopped: an output buffer is low; flush and call again
SEQ_BARRIER = 2     # stopped: the next command must wait until every earlier seq is settled

_SETTLE_BEV = 7     # balance events one settle message may produce


@kernel(inline="always")
def _timing_reject(out, n_oev, n_bev):
    """Did the command just run get a rejection that in-flight settles could change?"""
    if out.n[N_OEV] > n_oev:
        r = out.oev[n_oev].reason
        if r == R.R_INSUFFICIENT_BALANCE or r == R.R_DUPLICATE_ORDER_ID or r == R.R_ORDER_CAPACITY:
            return True
    if out.n[N_BEV] > n_bev and out.bev[n_bev].reason == R.R_INSUFFICIENT_BALANCE:
        return True
    return False


@kernel(inline="always")
def _append(dst, n_dst, cmd, seq, ref):
    """dst[n_dst[0]] = cmd with its seq and ref."""
    dst[n_dst[0]] = cmd
    f = dst[n_dst[0]]
    n_dst[0] += 1
    f.seq = seq
    f.ref = ref


@kernel()
def ubs_sequence(u, out, cmds, start, stop, fwd, n_fwd, log, n_log, settled, limit):
    """UBSCore: sequence cmds[start:stop], check and lock each; append the
    accepted ones to fwd (for the ME) and every one to log (the sequenced
    command log), with seq and ref (-1: not sent to the ME). `settled`: every
    settle of every seq <= settled has been applied; cmds[:limit] are valid
    (for prefetching). Returns (next index, SEQ_*). Leaves room in fwd for the
    mark the caller appends."""
    i = start
    while i < stop:
        ubs_prefetch(u, cmds, i, limit)
        if (n_fwd[0] + 2 > len(fwd) or n_log[0] + 1 > len(log) or out.n[N_OEV] + 1 > len(out.oev)
                or out.n[N_BEV] + 2 > len(out.bev)):
            return i, SEQ_ROOM
        cmd = cmds[i]
        seq = u.ctr[U_SEQ] + 1
        exact = settled >= seq - 1
        kind = cmd.kind
        if kind == R.CMD_MOVE and not exact:
            return i, SEQ_BARRIER
        n_oev = out.n[N_OEV]
        n_bev = out.n[N_BEV]
        ref = ubs_command(u, out, cmd, seq)
        if not exact and _timing_reject(out, n_oev, n_bev):
            out.n[N_OEV] = n_oev                # the rejection changed nothing: undo it
            out.n[N_BEV] = n_bev
            return i, SEQ_BARRIER
        u.ctr[U_SEQ] = seq
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


@kernel()
def ubs_apply(u, out, settles, start, stop, settled):
    """UBSCore: apply settles[start:stop] in order; a mark sets settled[0].
    Returns the index of the first one not applied (output buffer low)."""
    for j in range(start, min(stop, start + PREFETCH_FAR)):
        ubs_prefetch_settle(u, settles[j])
    i = start
    while i < stop:
        if i + PREFETCH_FAR < stop:
            ubs_prefetch_settle(u, settles[i + PREFETCH_FAR])
        if out.n[N_BEV] + _SETTLE_BEV > len(out.bev):
            return i
        s = settles[i]
        if s.kind == R.SETTLE_MARK:
            settled[0] = s.seq
        else:
            ubs_settle_one(u, out, s)
        i += 1
    return i


@kernel(inline="always")
def _me_prefetch(me, cmds, i, limit):
    if i + PREFETCH_NEAR < limit and names_order(cmds[i + PREFETCH_NEAR]):
        me_prefetch_order(me, cmds[i + PREFETCH_NEAR].ref)
    if i + PREFETCH_NEXT < limit and names_order(cmds[i + PREFETCH_NEXT]):
        me_prefetch_links(me, cmds[i + PREFETCH_NEXT].ref)


@kernel()
def me_batch(me, out, cmds, start, stop, marked, limit):
    """The ME: run the accepted commands cmds[start:stop]; a mark is echoed
    into the settle stream and sets marked[0]. Returns the index of the first
    command not run; stops early when an output buffer is low or a taker
    paused (me_resume carries it on at the next call)."""
    if me_resume(me, out):
        return start
    i = start
    while i < stop:
        _me_prefetch(me, cmds, i, limit)
        if (out.n[N_OEV] + 8 > len(out.oev) or out.n[N_TEV] + 2 > len(out.tev)
                or out.n[N_SETTLE] + 4 > len(out.settle)):
            return i
        cmd = cmds[i]
        seq = cmd.seq
        paused = False
        if cmd.kind == R.CMD_MARK:
            emit_settle(out, R.SETTLE_MARK, seq, 0, 0, 0, 0, 0, 0, -1, -1, 0, 0)
            marked[0] = seq
        else:
            paused = me_command(me, out, cmd, seq)
        i += 1
        if paused:
            return i
    return i


@kernel()
def me_idle(me):
    """No taker is paused mid-match."""
    return me.ctr[C_PENDING] < 0
