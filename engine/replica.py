"""Settlement's state machine: a replica of UBSCore that replays, in seq
order, the sequenced command log and the ME's outputs, and so emits every
event exactly as ST does.

In MT, UBSCore decides while settles of earlier seqs may still be in flight,
so the balance-after values of its own events (and their interleaving with
those of fills) depend on timing. The replica has no such problem: it runs
the per-seq driver (engine/driver.py) on the commands in seq order with the
ME's step done elsewhere: step 1 is `ubscore.apply_command`, step 2 is a copy
of the ME's order and trade events of that seq, step 3 is
`ubscore.apply_settle` on the ME's settle messages of that seq, each behind
the driver's room check. Its decisions must equal UBSCore's (both are ST's);
any difference is recorded as a divergence, never silently passed.

Two details of the cut:
- refs (lock slots) are allocated by timing in UBSCore; the replica keeps its
  own and maps UBSCore's (`refmap`), set when an accepted place is replayed;
- a cancel or reduce that UBSCore found but whose release was in flight was
  rejected by the ME; the replica rejects it itself and skips the ME's event.
"""
from .jit import kernel

from . import records as R, ubscore
from .bits import prefetch
from .driver import sequence_room, settle_room
from .emit import N_ORDER_EVENTS, N_TRADE_EVENTS
from .ubscore import PREFETCH_FAR, UBS_LAST_SEQ

# Streams, each [head, end) in pos[2 * P_*: 2 * P_* + 2]
P_COMMANDS, P_SETTLES, P_ORDER_EVENTS, P_TRADE_EVENTS = 0, 1, 2, 3
# replay_state indices: kept between calls
RS_SEQ = 0          # seq whose command is replayed and whose ME outputs are being taken; 0: none
RS_SENT = 1         # 1 if UBSCore sent that command to the ME
RS_KEEP = 2         # 1 if the replica accepted it too (else the ME's outputs for it are skipped)
RS_DIVERGED = 3     # first seq where the replica's decision differed from UBSCore's; 0: none

REPLAY_DONE = 0     # everything up to `upto` that is in hand is replayed
REPLAY_ROOM = 1     # an output buffer is low: flush it and call again
REPLAY_DIVERGED = 2


@kernel(inline="always")
def _replay_command(ubs, out, refmap, c, replay_state):
    """Step 1 on a logged command; False if the replica decides otherwise than UBSCore did."""
    seq = c.seq
    kind = c.kind
    ref = ubscore.apply_command(ubs, out, c, seq)
    ubs.counters[UBS_LAST_SEQ] = seq
    sent = c.ref >= 0
    stale = (kind == R.CMD_CANCEL or kind == R.CMD_REDUCE) and sent and ref < 0
    if (ref >= 0) != sent and not stale:
        replay_state[RS_DIVERGED] = seq
        return False
    if kind == R.CMD_PLACE and ref >= 0:
        refmap[c.ref] = ref
    replay_state[RS_SEQ] = seq
    replay_state[RS_SENT] = 1 if sent else 0
    replay_state[RS_KEEP] = 1 if ref >= 0 else 0
    return True


@kernel(inline="always")
def _prefetch_mapped(ubs, refmap, s):
    """Fetch the replica's lock records a settle message (UBSCore's refs) will change."""
    if s.kind != R.SETTLE_MARK:
        prefetch(ubs.locks, refmap[s.buyer_ref])
        if s.seller_ref >= 0:
            prefetch(ubs.locks, refmap[s.seller_ref])


@kernel(inline="always")
def _take_seq(src, pos, p, seq, dst, counts, ci, keep):
    """Copy (or with keep False, skip) the records of `seq` at the head of
    stream p into dst; False if dst filled up first (call again after a flush)."""
    i, n = pos[2 * p], pos[2 * p + 1]
    while i < n and src[i].seq == seq:
        if keep:
            if counts[ci] == len(dst):
                pos[2 * p] = i
                return False
            dst[counts[ci]] = src[i]
            counts[ci] += 1
        i += 1
    pos[2 * p] = i
    return True


@kernel()
def replay(ubs, out, refmap, cmds, settles, order_events, trade_events, pos, upto, replay_state):
    """Replay every command of cmds (and the ME's outputs for it) with seq <=
    upto, into out. Returns REPLAY_*."""
    while True:
        if replay_state[RS_SEQ] == 0:
            i, n = pos[2 * P_SETTLES], pos[2 * P_SETTLES + 1]
            while i < n and settles[i].kind == R.SETTLE_MARK:     # marks only pace the streams
                i += 1
            pos[2 * P_SETTLES] = i
            ci = pos[2 * P_COMMANDS]
            if ci == pos[2 * P_COMMANDS + 1] or cmds[ci].seq > upto:
                return REPLAY_DONE
            ubscore.prefetch_command(ubs, cmds, ci, pos[2 * P_COMMANDS + 1])
            if not sequence_room(out):
                return REPLAY_ROOM
            if not _replay_command(ubs, out, refmap, cmds[ci], replay_state):
                return REPLAY_DIVERGED
            pos[2 * P_COMMANDS] = ci + 1
        seq = replay_state[RS_SEQ]
        if replay_state[RS_SENT]:
            if not _take_seq(order_events, pos, P_ORDER_EVENTS, seq, out.order_events, out.n,
                             N_ORDER_EVENTS, replay_state[RS_KEEP] != 0):
                return REPLAY_ROOM
            if not _take_seq(trade_events, pos, P_TRADE_EVENTS, seq, out.trade_events, out.n,
                             N_TRADE_EVENTS, True):
                return REPLAY_ROOM
            # A seq's settles are contiguous: the ME echoes marks only between
            # commands, and those before this seq were skipped above.
            i, n = pos[2 * P_SETTLES], pos[2 * P_SETTLES + 1]
            while i < n and settles[i].kind != R.SETTLE_MARK and settles[i].seq == seq:
                if not settle_room(out, 1):
                    pos[2 * P_SETTLES] = i
                    return REPLAY_ROOM
                if i + PREFETCH_FAR < n:
                    _prefetch_mapped(ubs, refmap, settles[i + PREFETCH_FAR])
                s = settles[i]
                s.buyer_ref = refmap[s.buyer_ref]
                if s.seller_ref >= 0:
                    s.seller_ref = refmap[s.seller_ref]
                ubscore.apply_settle(ubs, out, s)
                i += 1
            pos[2 * P_SETTLES] = i
        replay_state[RS_SEQ] = 0
