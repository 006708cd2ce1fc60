"""Fault injection, so tests and operators can prove each fault is caught.

NCBENCH_INJECT="delay:rank=1:us=500;corrupt:rank=2;stall:rank=3" -> per-rank hooks used by measure/p2p.

  delay:rank=R:us=U[:peer=Q]  rank R sleeps U microseconds before each operation (with peer=Q: only
                              before point-to-point operations with rank Q, a slowed pair or link)
  corrupt:rank=R              rank R's contribution to every checked operation is wrong
  stall:rank=R[:after=N]      rank R stops taking part: at its first checkpoint, or before its
                              (N+1)-th operation with after=N (then the others hang inside a collective)
Ranks are MPI_COMM_WORLD ranks. Faults are separated by ';'.
"""

import time
from dataclasses import dataclass

from ..errors import NcbenchError

ENV = "NCBENCH_INJECT"
BUSY_WAIT_BELOW_US = 2000  # time.sleep overshoots by ~50-100 us; spin for short delays
_KEYS = {"delay": {"rank", "us", "peer"}, "corrupt": {"rank"}, "stall": {"rank", "after"}}
_REQUIRED = {"delay": {"rank", "us"}, "corrupt": {"rank"}, "stall": {"rank"}}


@dataclass(frozen=True)
class Fault:
    kind: str  # delay | corrupt | stall
    rank: int
    us: float = 0.0
    peer: int | None = None
    after: int | None = None


def parse(text: str) -> tuple[Fault, ...]:
    """Return the faults described by an NCBENCH_INJECT value; '' means none."""
    faults = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        kind, *fields = item.split(":")
        if kind not in _KEYS:
            raise NcbenchError(f"{ENV}: unknown fault {kind!r} in {item!r}; use delay, corrupt or stall")
        values = {}
        for field in fields:
            key, _, value = field.partition("=")
            if key not in _KEYS[kind]:
                raise NcbenchError(f"{ENV}: {kind} takes {', '.join(sorted(_KEYS[kind]))}, not {key!r} ({item!r})")
            try:
                values[key] = float(value) if key == "us" else int(value)
            except ValueError:
                raise NcbenchError(f"{ENV}: {key}={value!r} in {item!r} is not a number") from None
        missing = _REQUIRED[kind] - set(values)
        if missing:
            raise NcbenchError(f"{ENV}: {item!r} needs {', '.join(sorted(missing))} (e.g. delay:rank=1:us=500)")
        faults.append(Fault(kind, **values))
    return tuple(faults)


def sleep_us(us: float) -> None:
    """Sleep `us` microseconds, spinning for short waits so the delay is what was asked."""
    if us >= BUSY_WAIT_BELOW_US:
        time.sleep(us * 1e-6)
        return
    end = time.perf_counter() + us * 1e-6
    while time.perf_counter() < end:
        pass


def stall_forever() -> None:
    """Stop taking part: block until the launcher kills this process."""
    while True:
        time.sleep(3600)


class Injector:
    """The faults that apply to one world rank, as hooks the harness calls."""

    def __init__(self, faults: tuple[Fault, ...], world_rank: int):
        mine = [f for f in faults if f.rank == world_rank]
        self.faults = faults
        self.delay_us = sum(f.us for f in mine if f.kind == "delay" and f.peer is None)
        self.peer_delay_us = {f.peer: f.us for f in mine if f.kind == "delay" and f.peer is not None}
        self.corrupt = any(f.kind == "corrupt" for f in mine)
        stalls = [f for f in mine if f.kind == "stall"]
        self.stall_at_checkpoint = any(f.after is None for f in stalls)
        self.stall_after = min((f.after for f in stalls if f.after is not None), default=None)
        self.ops_done = 0

    @property
    def active(self) -> bool:
        return bool(self.faults)

    def pre_op(self):
        """Return a zero-argument hook to run before each operation on this rank, or None."""
        if self.stall_after is not None:
            return self._count_then_stall
        if self.delay_us:
            delay = self.delay_us
            return lambda: sleep_us(delay)
        return None

    def pre_p2p(self, peer: int):
        """Return the hook to run before each message to or from world rank `peer`, or None."""
        us = self.delay_us + self.peer_delay_us.get(peer, 0.0)
        if self.stall_after is not None:  # count messages too, so after=N stalls a p2p or health run mid-test
            extra = self.peer_delay_us.get(peer, 0.0)

            def count_delay_stall():
                self._count_then_stall()
                if extra:
                    sleep_us(extra)

            return count_delay_stall
        return (lambda: sleep_us(us)) if us else None

    def _count_then_stall(self) -> None:
        if self.ops_done >= self.stall_after:
            stall_forever()
        self.ops_done += 1
        if self.delay_us:
            sleep_us(self.delay_us)


def from_env(environ: dict, world_rank: int) -> Injector:
    """Return this rank's Injector from the environment."""
    return Injector(parse(environ.get(ENV, "")), world_rank)
