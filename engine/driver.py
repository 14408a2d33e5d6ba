"""The per-seq driver: how one command goes through UBSCore and the ME, and
how much output room each step needs, written once.

A seq is three steps, each a call of one state machine's entry point:
1. UBSCore: `ubscore.apply_command` checks, locks, moves money; an accepted
   order command gets its ref;
2. the ME: `matching.apply_command` matches it (or cancels, reduces, moves);
3. UBSCore: `ubscore.apply_settle` for each settle message the ME emitted.

ST runs the three back to back (`run_seq`, called by engine/core.py). The
multi-process cut runs 1 and 3 in UBSCore's process and 2 in the ME's
(engine/stages.py); settlement's replica runs 1 and 3 and takes the output
of 2 from the ME's rings (engine/replica.py). All of them check output room
with the helpers below, which derive from the worst cases declared beside the
entry points (`ubscore.COMMAND_*`, `ubscore.SETTLE_*`, `matching.COMMAND_*`):
no caller has a room constant of its own.

Invariant: a step starts only when its room helper says yes, so no emit ever
writes past a buffer; the ME pauses a taker itself when a fill would not fit.
"""
from . import matching, ubscore
from .emit import N_BALANCE_EVENTS, N_ORDER_EVENTS, N_SETTLES, N_TRADE_EVENTS
from .jit import kernel


@kernel(inline="always")
def sequence_room(out):
    """Room for step 1 on one command."""
    return (out.n[N_ORDER_EVENTS] + ubscore.COMMAND_ORDER_EVENTS <= len(out.order_events)
            and out.n[N_BALANCE_EVENTS] + ubscore.COMMAND_BALANCE_EVENTS <= len(out.balance_events))


@kernel(inline="always")
def match_room(out):
    """Room for step 2 to start on one command (or a mark)."""
    return (out.n[N_ORDER_EVENTS] + matching.COMMAND_ORDER_EVENTS <= len(out.order_events)
            and out.n[N_TRADE_EVENTS] + matching.COMMAND_TRADE_EVENTS <= len(out.trade_events)
            and out.n[N_SETTLES] + matching.COMMAND_SETTLES <= len(out.settles))


@kernel(inline="always")
def settle_room(out, n_settles):
    """Room for step 3 on n_settles settle messages."""
    return (out.n[N_BALANCE_EVENTS] + n_settles * ubscore.SETTLE_BALANCE_EVENTS
            <= len(out.balance_events))


@kernel(inline="always")
def seq_room(out):
    """ST: room for all three steps of one command. The ME emits at most
    len(out.settles) settle messages before it pauses, and step 3 applies them
    all, so the balance events are bounded by the settle buffer's size."""
    return (out.n[N_ORDER_EVENTS] + ubscore.COMMAND_ORDER_EVENTS + matching.COMMAND_ORDER_EVENTS
            <= len(out.order_events)
            and out.n[N_TRADE_EVENTS] + matching.COMMAND_TRADE_EVENTS <= len(out.trade_events)
            and out.n[N_SETTLES] + matching.COMMAND_SETTLES <= len(out.settles)
            and out.n[N_BALANCE_EVENTS] + ubscore.COMMAND_BALANCE_EVENTS
            + len(out.settles) * ubscore.SETTLE_BALANCE_EVENTS <= len(out.balance_events))


@kernel(inline="always")
def apply_emitted_settles(ubs, out):
    """Step 3 in ST: apply the settle messages the ME left in out.settles, and empty it."""
    n = out.n[N_SETTLES]
    if n > 0:
        for i in range(n):           # fetch every lock record first, then apply
            ubscore.prefetch_settle(ubs, out.settles[i])
        for i in range(n):
            ubscore.apply_settle(ubs, out, out.settles[i])
        out.n[N_SETTLES] = 0


@kernel(inline="always")
def run_seq(ubs, me, out, cmd, seq):
    """ST: one command, with seq_room free, through steps 1, 2, 3. Returns True
    if a taker paused mid-match (resume_seq carries it on after a flush)."""
    cmd.seq = seq
    paused = False
    ref = ubscore.apply_command(ubs, out, cmd, seq)
    if ref >= 0:
        cmd.ref = ref
        paused = matching.apply_command(me, out, cmd, seq)
    apply_emitted_settles(ubs, out)
    return paused


@kernel(inline="always")
def resume_seq(ubs, me, out):
    """ST: carry on a paused taker (steps 2 and 3), on flushed buffers. True if it paused again."""
    paused = matching.resume(me, out)
    apply_emitted_settles(ubs, out)
    return paused
