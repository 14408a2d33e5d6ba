"""Progress of a long run, on stderr: what it is doing, how far it got, for how long, how long still.

    xinf pipeline mt: 1,234,567 of 5,000,000 commands (24.7%, 410,000/s), 12 s elapsed, ~9 s left

The first line comes FIRST_S seconds into a run, then one every EVERY_S; a
run that ends sooner prints nothing, so short runs and tests stay quiet, and
one that printed a line ends with one saying "done in ...". stdout is left
alone: several commands print figures there that tests and scripts parse as
key=value lines. XINF_PROGRESS_S=<seconds> sets both intervals (0: a line at
every change; off: no lines).

Only a command `xinf` started reports (cli.py names it: `set_command`);
called as a library (the tests), nothing prints and no thread starts. What a
command calls joins its report (`task()` nests): `xinf bench pipeline` sets
the context ("run 2 of 3, mt"), run_mt inside it the stage and its count. A
thread prints while the caller is busy elsewhere (compiling, waiting for
child processes), so the lines come even while nothing is counted.

On the first start of a source tree (xinfinity.COLD_CACHE) a stage that may
compile the numba kernels says so (`stage(..., compiles=KEY)`), once per key
and process: the first such stage also prints the one-time notice.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time

FIRST_S = 3.0       # the first line, this far into a run
EVERY_S = 10.0      # then one line every EVERY_S
ENV = "XINF_PROGRESS_S"
NOTICE = ("xinfinity: first start of this source tree: compiling the numba kernels "
          "(4-6 minutes on 2 cores; cached for later starts)")
COMPILING = "compiling the numba kernels (the first start of this source tree)"

_command: str | None = None     # the running `xinf` command ("pipeline st"), set by cli.py
_command_pid = 0                # its process (a forked child of it reports nothing)
_open: Progress | None = None   # the report a command has open (what it calls joins it)
_compiled: set[str] = set()     # stages (compiles=KEY) that ran through once in this process
_noticed = False                # the cold-cache notice was printed


def set_command(name: str | None) -> None:
    """cli.py: the command now running (None: none, as for a library call)."""
    global _command, _command_pid
    _command, _command_pid = name, os.getpid()


def intervals(env: str | None = None) -> tuple[float, float] | None:
    """(first_s, every_s) as XINF_PROGRESS_S sets them; None when it turns progress off."""
    v = os.environ.get(ENV) if env is None else env
    if v is None or not v.strip():
        return FIRST_S, EVERY_S
    if v.strip().lower() in ("off", "no", "none", "false"):
        return None
    try:
        s = float(v)
    except ValueError:
        return FIRST_S, EVERY_S
    return None if s < 0 else (s, s)


def duration(s: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """One command's report. stage() says what it does now (and of how many
    units, if counted), update() how many are done; tick() prints a line when
    one is due. clock, out: injectable (tests); thread: tick every second or so."""

    def __init__(self, name: str, first_s: float = FIRST_S, every_s: float = EVERY_S, clock=time.monotonic,
                 out=None, enabled: bool = True, thread: bool = False):
        self.name, self.every_s, self.clock, self.out, self.enabled = name, every_s, clock, out, enabled
        self.t0 = clock()
        self.next_at = self.t0 + first_s
        self.lines = 0
        self.last = None            # what the last line said, its times and rate left out
        self.last_at = self.t0
        self.context = ""           # set by an outer caller: "run 2 of 3, mt"
        self.note = ""              # said after the stage (or a callable giving it)
        self.label, self.total, self.unit, self.done, self.per_s = "", None, "", 0, False
        self.stage_t0, self.done0, self.compiles = self.t0, 0, None
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if thread and enabled:
            self._thread = threading.Thread(target=self._ticker, name="xinf-progress", daemon=True)
            self._thread.start()

    # -- what the caller says ---------------------------------------------------------------

    def stage(self, label: str, total: int | None = None, unit: str = "", done: int = 0, per_s: bool = False,
              compiles: str | None = None) -> None:
        """Now doing `label`, `done` of `total` units so far (total None: not counted).
        per_s: say the rate. compiles: a key naming what compiles on a cold cache here."""
        self._ran_through()
        self.label, self.total, self.unit, self.done, self.per_s = label, total, unit, done, per_s
        self.stage_t0, self.done0, self.note = self.clock(), done, ""
        self.compiles = compiles if compiles and _cold() and compiles not in _compiled else None
        if self.compiles and self.enabled:
            global _noticed
            if not _noticed:
                _noticed = True
                self._write(NOTICE)
        self.tick()

    def update(self, done: int | None = None, add: int = 0) -> None:
        """done units of the stage so far (or add to them); prints when a line is due."""
        self.done = (self.done if done is None else done) + add
        if self.compiles and self.done > self.done0:
            self._ran_through()
        self.tick()

    # -- the lines --------------------------------------------------------------------------

    def tick(self) -> str | None:
        """Print a line if one is due (the line, else None)."""
        if not self.enabled or os.getpid() != self.pid:
            return None
        with self._lock:
            now = self.clock()
            if now < self.next_at:
                return None
            said = self._said()
            if said == self.last and now - self.last_at < max(self.every_s, 1.0):
                return None             # nothing new (XINF_PROGRESS_S=0): not again within a second
            line = self.line(now)
            self.next_at, self.last, self.last_at = now + self.every_s, said, now
            self.lines += 1
        self._write(line)
        return line

    def line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        body = self._body(now)
        text = f"xinf {self.name}: {body + ', ' if body else ''}{duration(now - self.t0)} elapsed"
        left = self.left(now)
        return text + (f", ~{duration(left)} left" if left is not None and left >= 1 else "")

    def _said(self) -> tuple:
        return self.context, self.label, self.done, self.total, _text(self.note), bool(self.compiles)

    def _body(self, now: float) -> str:
        s = self.label
        if self.total is not None:
            count = f"{self.done:,} of {self.total:,}" + (f" {self.unit}" if self.unit else "")
            pct = 100 * self.done / self.total if self.total else 100.0
            extra = [f"{pct:.1f}%" if self.total >= 1000 else f"{pct:.0f}%"]
            rate = self.rate(now)
            if self.per_s and rate:
                extra.append(f"{rate:,.0f}/s")
            s = f"{s}: {count} ({', '.join(extra)})" if s else f"{count} ({', '.join(extra)})"
        elif self.done:
            s = f"{s}: {self.done:,} {self.unit}".rstrip() if s else f"{self.done:,} {self.unit}".rstrip()
        notes = [n for n in (_text(self.note), COMPILING if self.compiles and self.done == self.done0 else "") if n]
        s = ", ".join(x for x in (s, *notes) if x)
        return ", ".join(x for x in (self.context, s) if x)

    def rate(self, now: float) -> float | None:
        """Units per second in this stage."""
        dt = now - self.stage_t0
        return (self.done - self.done0) / dt if dt > 0 and self.done > self.done0 else None

    def left(self, now: float) -> float | None:
        """Seconds the stage still needs at its rate so far (None: not known)."""
        rate = self.rate(now)
        if self.total is None or rate is None or self.done >= self.total:
            return None
        return (self.total - self.done) / rate

    def _write(self, line: str) -> None:
        out = self.out or sys.stderr
        try:
            out.write(line + "\n")
            out.flush()
        except (OSError, ValueError):        # a closed or broken stderr: the run goes on
            pass

    # -- the end ----------------------------------------------------------------------------

    def _ran_through(self) -> None:
        if self.compiles:
            _compiled.add(self.compiles)
            self.compiles = None

    def _ticker(self) -> None:
        period = max(0.1, min(1.0, self.every_s / 2))
        while not self._stop.wait(period):
            self.tick()

    def close(self, ok: bool = True) -> None:
        """Stop the thread; if it printed a line, say that it is done (ok) and in how long."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if ok:
            self._ran_through()
        if self.enabled and self.lines and ok and os.getpid() == self.pid:
            now = self.clock()
            body = self._body(now)
            self._write(f"xinf {self.name}: {body + ', ' if body else ''}done in {duration(now - self.t0)}")
        self.enabled = False


def _text(note) -> str:
    if not callable(note):
        return note
    try:
        return str(note() or "")
    except Exception as e:      # a report must not stop the run
        return f"({type(e).__name__})"


def _cold() -> bool:
    import xinfinity
    return bool(getattr(xinfinity, "COLD_CACHE", False))


_QUIET = Progress("", enabled=False)


def current() -> Progress:
    """The report open in this process (`task`, `reported`), else one that prints nothing."""
    return _open if _open is not None and _open.pid == os.getpid() else _QUIET


def reported(func):
    """func runs inside `task()` (joining the open report, if any): it finds it with current()."""
    @functools.wraps(func)
    def run(*args, **kwargs):
        with task():
            return func(*args, **kwargs)
    return run


@contextlib.contextmanager
def task(name: str | None = None, enabled: bool = True):
    """The running command's report: the one already open in this process (a
    nested call), else a new one named after the command (`name` overrides),
    printing only in the process `xinf` started, and when `enabled` (--quiet)."""
    global _open
    if _open is not None and _open.pid == os.getpid():
        yield _open
        return
    every = intervals()
    on = enabled and every is not None and _command is not None and _command_pid == os.getpid()
    first_s, every_s = every or (FIRST_S, EVERY_S)
    p = Progress(name or _command or "", first_s, every_s, enabled=on, thread=on)
    _open = p
    ok = False
    try:
        yield p
        ok = True
    finally:
        _open = None
        p.close(ok)
