"""Settlement's state machine: a replica of UBSCore that replays, in seq
order, the sequenced command log and the ME's outputs, and so emits every
event exactly as ST does.

In MT, UBSCore decides while settles of earlier seqs may still be in flight,
so the balance-after values of its own events (and their interleaving with
those of fills) depend on timing. The replica has no such problem: it runs
the same UBSCore functions on the commands in seq order, and after each
command applies that seq's settle messages from the ME, copying the ME's
order and trade events of that seq in between: the ST kernel's loop with the
ME's work done elsewhere. Its decisions must equal UBSCore's (both are ST's);
any difference is recorded as a divergence, never silently passed.

Two details of the cut:
- refs (lock slots) are allocated by timing in UBSCore; the replica keeps its
  own and maps UBSCore's (`refmap`), set when an accepted place is replayed;
- a cancel or reduce that UBSCore found but whose release was in flight was
  rejected by the ME; the replica rejects it itself and skips the ME's event.
"""
from .jit import kernel

from . import records as R
from .bits import prefetch
from .emit import N_BEV, N_OEV, N_TEV
from .ubscore import PREFETCH_FAR, U_SEQ, ubs_command, ubs_prefetch, ubs_settle_one

# pos: [cmd head, cmd end, settle head, settle end, oev head, oev end, tev head, tev end]
P_CMD, P_SET, P_OEV, P_TEV = 0, 1, 2, 3
# rs: replay state kept between calls
RS_CUR = 0          # seq whose command is replayed and whose ME outputs are being taken; 0: none
RS_SENT = 1         # 1 if UBSCore sent that command to the ME
RS_KEEP = 2         # 1 if the replica accepted it too (else the ME's outputs for it are skipped)
RS_DIVERGED = 3     # first seq where the replica's decision differed from UBSCore's; 0: none

REPLAY_DONE = 0     # everything up to `upto` that is in hand is replayed
REPLAY_ROOM = 1     # an output buffer is low: flush it and call again
REPLAY_DIVERGED = 2


@kernel(inline="always")
def _replay_command(u, out, refmap, c, rs):
    seq = c.seq
    kind = c.kind
    ref = ubs_command(u, out, c, seq)
    u.ctr[U_SEQ] = seq
    sent = c.ref >= 0
    stale = (kind == R.CMD_CANCEL or kind == R.CMD_REDUCE) and sent and ref < 0
    if (ref >= 0) != sent and not stale:
        rs[RS_DIVERGED] = seq
        return False
    if kind == R.CMD_PLACE and ref >= 0:
        refmap[c.ref] = ref
    rs[RS_CUR] = seq
    rs[RS_SENT] = 1 if sent else 0
    rs[RS_KEEP] = 1 if ref >= 0 else 0
    return True


@kernel(inline="always")
def _prefetch_mapped(u, refmap, s):
    """Fetch the replica's lock records a settle message (UBSCore's refs) will change."""
    if s.kind != R.SETTLE_MARK:
        prefetch(u.locks, refmap[s.buyer_ref])
        if s.seller_ref >= 0:
            prefetch(u.locks, refmap[s.seller_ref])


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
def replay(u, out, refmap, cmds, sets, oevs, tevs, pos, upto, rs):
    """Replay every command of cmds (and the ME's outputs for it) with seq <=
    upto, into out. Returns REPLAY_*."""
    while True:
        if rs[RS_CUR] == 0:
            i, n = pos[2 * P_SET], pos[2 * P_SET + 1]
            while i < n and sets[i].kind == R.SETTLE_MARK:     # marks only pace the streams
                i += 1
            pos[2 * P_SET] = i
            ci = pos[2 * P_CMD]
            if ci == pos[2 * P_CMD + 1] or cmds[ci].seq > upto:
                return REPLAY_DONE
            ubs_prefetch(u, cmds, ci, pos[2 * P_CMD + 1])
            if out.n[N_OEV] + 1 > len(out.oev) or out.n[N_BEV] + 2 > len(out.bev):
                return REPLAY_ROOM
            if not _replay_command(u, out, refmap, cmds[ci], rs):
                return REPLAY_DIVERGED
            pos[2 * P_CMD] = ci + 1
        seq = rs[RS_CUR]
        if rs[RS_SENT]:
            if not _take_seq(oevs, pos, P_OEV, seq, out.oev, out.n, N_OEV, rs[RS_KEEP] != 0):
                return REPLAY_ROOM
            if not _take_seq(tevs, pos, P_TEV, seq, out.tev, out.n, N_TEV, True):
                return REPLAY_ROOM
            # A seq's settles are contiguous: the ME echoes marks only between
            # commands, and those before this seq were skipped above.
            i, n = pos[2 * P_SET], pos[2 * P_SET + 1]
            while i < n and sets[i].kind != R.SETTLE_MARK and sets[i].seq == seq:
                if out.n[N_BEV] + 8 > len(out.bev):
                    pos[2 * P_SET] = i
                    return REPLAY_ROOM
                if i + PREFETCH_FAR < n:
                    _prefetch_mapped(u, refmap, sets[i + PREFETCH_FAR])
                s = sets[i]
                s.buyer_ref = refmap[s.buyer_ref]
                if s.seller_ref >= 0:
                    s.seller_ref = refmap[s.seller_ref]
                ubs_settle_one(u, out, s)
                i += 1
            pos[2 * P_SET] = i
        rs[RS_CUR] = 0
