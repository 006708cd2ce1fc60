"""Point-to-point between rank pairs: the OSU trio (latency, bw, bibw), on the collective harness.

PairSweep + world communicator -> rounds of rank pairs -> per pair a 2-rank communicator timed with
harness.plan/time_samples -> one row per (pair, test, size), gathered to rank 0 after each round.
latency = half the round trip (osu_latency); bw and bibw send windows of messages (osu_bw, osu_bibw).
"""

from dataclasses import dataclass

import numpy as np

from .. import ops
from ..errors import NcbenchError
from ..units import format_size
from . import backends, harness
from .backends.base import Backend

TESTS = ("latency", "bw", "bibw")
PAIRINGS = ("neighbours", "first", "all-nodes", "all", "self")
ACK_TAG, DATA_TAG = 2, 1


@dataclass(frozen=True)
class PairSweep:
    tests: tuple[str, ...] = TESTS
    pairs: str = "neighbours"
    concurrent: bool = False  # measure disjoint pairs at the same time (shared links then show)
    min_bytes: int = 1
    max_bytes: int = 4 << 20  # osu_latency's default largest message
    step_factor: float = 2.0
    window: int = 64  # messages in flight for bw/bibw (OSU's default -W)
    iters: int | None = None
    warmup: int = 5
    samples: int = 10
    time_budget_s: float = 0.05
    check: int = 1
    backend: str = "mpi"

    def sizes(self) -> list[int]:
        return harness.Sweep(
            op="sendrecv", min_bytes=self.min_bytes, max_bytes=self.max_bytes, step_factor=self.step_factor
        ).sizes()


def check_pair_sweep(sweep: PairSweep, nranks: int) -> None:
    """Raise NcbenchError for a pair sweep that cannot run."""
    unknown = [t for t in sweep.tests if t not in TESTS]
    if unknown:
        raise NcbenchError(f"unknown p2p test {unknown[0]!r}; choose from {', '.join(TESTS)}")
    if sweep.pairs not in PAIRINGS:
        raise NcbenchError(f"--pairs {sweep.pairs!r}: choose one of {', '.join(PAIRINGS)}")
    if nranks < 2 and sweep.pairs != "self":
        raise NcbenchError(
            "p2p needs at least 2 ranks: launch with mpiexec -n 2 or more, or pair each rank with itself (--pairs self)"
        )
    if sweep.backend not in backends.BACKENDS:  # every backend carries p2p
        raise NcbenchError(f"--backend {sweep.backend!r}: p2p runs on {', '.join(backends.BACKENDS)}")
    if sweep.min_bytes < 1 or sweep.min_bytes > sweep.max_bytes or sweep.step_factor <= 1:
        raise NcbenchError(f"p2p sizes need 1 <= -b <= -e and -f > 1 (got -b {sweep.min_bytes} -e {sweep.max_bytes})")
    if sweep.window < 1 or sweep.samples < 1 or sweep.warmup < 0:
        raise NcbenchError("--window and --samples must be at least 1, -w at least 0")


def pairs_for(pairing: str, node_of: tuple[int, ...]) -> list[tuple[int, int]]:
    """Return the (a, b) rank pairs, a < b, that `pairing` names for ranks living on `node_of` nodes."""
    n = len(node_of)
    if pairing == "neighbours":
        return [(r, r + 1) for r in range(n - 1)]
    if pairing == "first":
        return [(0, r) for r in range(1, n)]
    if pairing == "all":
        return [(a, b) for a in range(n) for b in range(a + 1, n)]
    if pairing == "self":  # each rank with itself: the copy path alone, no link (one GPU's p2p path)
        return [(r, r) for r in range(n)]
    leaders = [node_of.index(node) for node in range(max(node_of) + 1)]  # first rank of every node
    if len(leaders) < 2:
        raise NcbenchError("--pairs all-nodes needs 2 or more nodes; use --ranks-per-node to let ranks stand in")
    return [(a, b) for i, a in enumerate(leaders) for b in leaders[i + 1 :]]


def rounds(pairs: list[tuple[int, int]], concurrent: bool) -> list[list[tuple[int, int]]]:
    """Return the pairs grouped into rounds; a rank is in at most one pair per round."""
    if not concurrent:
        return [[p] for p in pairs]
    out: list[tuple[set, list]] = []
    for a, b in pairs:
        for busy, members in out:
            if a not in busy and b not in busy:
                busy.update((a, b))
                members.append((a, b))
                break
        else:
            out.append(({a, b}, [(a, b)]))
    return [members for _, members in out]


class Link:
    """How one pair moves bytes on this backend: two ranks, or one rank with itself (`--pairs self`).

    MPI (host or CUDA-aware device buffers) runs on the pair's 2-rank communicator; NCCL on the
    backend's communicator over every rank, whose peers are world ranks.
    """

    def __init__(self, backend, pc, pair: tuple[int, int], me: int):
        self.backend, self.pc = backend, pc
        self.alone = pc.size == 1  # a rank paired with itself
        self.first = pc.rank == 0  # sends in latency's first leg, bw's window and the check
        self.last = self.alone or pc.rank == 1  # receives them
        self.nccl = hasattr(backend, "p2p")
        self.peer = me if self.alone else pair[1 - pc.rank]  # world rank, NCCL's peer
        self.mpi_peer = 0 if self.alone else 1 - pc.rank
        if self.nccl:
            self.ack, self.rack = backend.alloc(1, ops.DTYPES["uint8"]), backend.alloc(1, ops.DTYPES["uint8"])

    def message(self, buf):
        return self.backend.message(buf, len(buf))

    def latency(self, buf, rbuf):
        """Return (call, persistent requests): one round trip in osu_latency's blocking order."""
        if self.nccl:
            return self._nccl_latency(buf, rbuf), ()
        pc, peer = self.pc, self.mpi_peer
        # persistent requests parse each buffer once: mpi4py spends ~0.4 us per buffer argument
        send, recv = pc.Send_init(self.message(buf), peer, DATA_TAG), pc.Recv_init(self.message(rbuf), peer, DATA_TAG)
        send_start, send_wait, recv_start, recv_wait = send.Start, send.Wait, recv.Start, recv.Wait
        if self.alone:

            def there_and_back():  # each leg a posted receive, then the send that matches it
                for _ in range(2):
                    recv_start()
                    send_start()
                    send_wait()
                    recv_wait()

            return there_and_back, (send, recv)
        if self.first:

            def initiate():
                send_start()
                send_wait()
                recv_start()
                recv_wait()

            return initiate, (send, recv)

        def answer():
            recv_start()
            recv_wait()
            send_start()
            send_wait()

        return answer, (send, recv)

    def _nccl_latency(self, buf, rbuf):
        n, peer, group = len(buf), self.peer, self.backend.p2p
        if self.alone:
            leg = group(sends=[(buf, n, peer)], recvs=[(rbuf, n, peer)])

            def there_and_back():
                leg()
                leg()

            return there_and_back
        send, recv = group(sends=[(buf, n, peer)]), group(recvs=[(rbuf, n, peer)])
        first, second = (send, recv) if self.first else (recv, send)

        def round_trip():  # one stream: the second leg starts when the first has completed
            first()
            second()

        return round_trip

    def window(self, buf, rbuf, window: int, both: bool):
        """Return a call moving `window` messages one way (bw) or each way (bibw), then an ack (bw)."""
        if self.nccl:
            return self._nccl_window(buf, rbuf, window, both)
        from mpi4py import MPI

        pc, peer, ack = self.pc, self.mpi_peer, np.zeros(1, dtype=np.uint8)
        waitall = MPI.Request.Waitall
        buf, rbuf = self.message(buf), self.message(rbuf)  # parsed once
        if both or self.alone:

            def call():  # bibw (or a rank with itself): post a window of receives and a window of sends
                reqs = [pc.Irecv(rbuf, peer, DATA_TAG) for _ in range(window)]
                reqs += [pc.Isend(buf, peer, DATA_TAG) for _ in range(window)]
                waitall(reqs)

            return call
        if self.first:

            def send_window():
                waitall([pc.Isend(buf, peer, DATA_TAG) for _ in range(window)])
                pc.Recv(ack, peer, ACK_TAG)

            return send_window

        def recv_window():
            waitall([pc.Irecv(rbuf, peer, DATA_TAG) for _ in range(window)])
            pc.Send(ack, peer, ACK_TAG)

        return recv_window

    def _nccl_window(self, buf, rbuf, window: int, both: bool):
        n, peer, group = len(buf), self.peer, self.backend.p2p
        if both or self.alone:
            return group(sends=[(buf, n, peer)] * window, recvs=[(rbuf, n, peer)] * window)
        if self.first:
            data, ack = group(sends=[(buf, n, peer)] * window), group(recvs=[(self.rack, 1, peer)])
        else:
            data, ack = group(recvs=[(rbuf, n, peer)] * window), group(sends=[(self.ack, 1, peer)])

        def call():
            data()
            ack()

        return call

    def one_way(self, buf, rbuf):
        """Return a call moving `buf` from the pair's first rank into the last rank's `rbuf`."""
        n = len(buf)
        if self.nccl:
            return self.backend.p2p(
                sends=[(buf, n, self.peer)] if self.first else (), recvs=[(rbuf, n, self.peer)] if self.last else ()
            )
        pc, peer = self.pc, self.mpi_peer
        if self.alone:
            return lambda: pc.Sendrecv(self.message(buf), peer, DATA_TAG, self.message(rbuf), peer, DATA_TAG)
        if self.first:
            return lambda: pc.Send(self.message(buf), peer, DATA_TAG)
        return lambda: pc.Recv(self.message(rbuf), peer, DATA_TAG)


def tests_for(sweep: "PairSweep", pair: tuple[int, int]) -> tuple[str, ...]:
    """Return the tests a pair runs: a rank with itself has no second direction, so no bibw."""
    return tuple(t for t in sweep.tests if not (t == "bibw" and pair[0] == pair[1]))


def measure_pair(sweep: PairSweep, pc, pair: tuple[int, int], injector, watchdog, job, backend) -> list[dict]:
    """Measure every test and size between the two ranks of `pc`; return rows (on its rank 0)."""
    from ..records import now_iso

    me = pair[pc.rank]
    link = Link(backend, pc, pair, me)
    pre = injector.pre_p2p(link.peer)
    rows = []
    byte = ops.DTYPES["uint8"]
    buf, rbuf = backend.alloc(sweep.max_bytes, byte), backend.alloc(sweep.max_bytes, byte)
    tests = tests_for(sweep, pair)
    for nbytes in sweep.sizes():
        s, r = buf[:nbytes], rbuf[:nbytes]
        for test in tests:
            raw, requests = (
                link.latency(s, r) if test == "latency" else (link.window(s, r, sweep.window, test == "bibw"), ())
            )
            call = harness._timed_call(raw, pre)
            what = f"p2p {test} {format_size(nbytes)} between ranks {pair[0]} and {pair[1]}"
            watchdog.arm(what)
            for _ in range(sweep.warmup):
                call()
            backend.sync()
            state: dict = {}
            iters, samples, _ = harness.plan(sweep, pc, call, backend.sync, state)
            run = Backend().batch(raw, pre, iters)
            per_rank = harness.time_samples(pc, run, backend.sync, iters, samples, watchdog, what, backend.timer())
            watchdog.disarm()
            for request in requests:
                request.Free()
            gathered = pc.allgather(per_rank)
            slowest = np.max(np.stack([g[0] for g in gathered]), axis=0)  # per sample, seconds per call
            device = np.max(np.stack([g[1] for g in gathered]), axis=0) if gathered[0][1] is not None else None
            if pc.rank == 0:
                same_node = job.node_of[pair[0]] == job.node_of[pair[1]]
                row = _row(test, nbytes, slowest, sweep, iters, samples, pair, 1 if same_node else 2, now_iso())
                rows.append(_timed_by(row, backend, device, sweep.window))
        wrong = check_pair(link, s, r, injector) if sweep.check else -1
        for row in rows[-len(tests) :] if pc.rank == 0 else []:
            row["wrong"] = wrong
            row["wrong_sources"] = str(pair[0]) if wrong > 0 else ""
    return rows


def _timed_by(row: dict, backend, device_per_call_s, window: int) -> dict:
    """Label the row with the backend and its timing; add device time per message where events ran."""
    row["backend"], row["timing"] = backend.name, backend.timing
    if device_per_call_s is not None:
        per = 2 if row["op"] == "latency" else window
        row["device_time_us"] = float(device_per_call_s.mean() * 1e6 / per)
    return row


def check_pair(link: Link, send, recv, injector) -> int:
    """Send the sum pattern from the pair's first rank to its last; return wrong bytes (on both ranks)."""
    backend, dt = link.backend, ops.DTYPES["uint8"]
    values = ops.contribution(backend.xp, dt, "sum", 0, 0, len(send), 2)
    if link.first:
        send[:] = ops.corrupt(backend.xp, values, "sum") if injector.corrupt else values
    if link.last:
        recv[:] = 0
    backend.sync()
    link.one_way(send, recv)()
    backend.sync()
    wrong = int((recv != values).sum()) if link.last else 0
    return link.pc.allreduce(wrong)


def _row(test, nbytes, per_call_s, sweep, iters, samples, pair, nnodes, when) -> dict:
    # per call: latency = one round trip; bw = a window one way; bibw = a window each way
    if test == "latency":
        times_us = per_call_s * 1e6 / 2
        moved = nbytes
    else:
        times_us = per_call_s * 1e6 / sweep.window
        moved = nbytes * (2 if test == "bibw" else 1)
    mean_us = float(times_us.mean())
    bandwidth = ops.algbw_GBps(moved, mean_us)
    return {
        "op": test,
        "backend": sweep.backend,
        "dtype": "uint8",
        "redop": "none",
        "root": -1,
        "in_place": False,
        "nranks": 2,
        "nnodes": nnodes,
        "ranks_per_node": -1,
        "nbytes": nbytes,
        "count": nbytes,
        "warmup": sweep.warmup,
        "iters": iters,
        "samples": samples,
        "time_us": mean_us,
        "time_us_min": float(times_us.min()),
        "time_us_p50": float(np.median(times_us)),
        "time_us_p99": float(np.percentile(times_us, 99)),
        "time_us_max": float(times_us.max()),
        "time_us_std": float(times_us.std()),
        "cv": float(times_us.std() / mean_us) if mean_us else 0.0,
        "algbw_GBps": bandwidth,
        "busbw_GBps": bandwidth,
        "wrong": -1,
        "wrong_sources": "",
        "slowest_rank": -1,
        "slowest_host": "",
        "lateness_us": 0.0,
        "peer_a": pair[0],
        "peer_b": pair[1],
        "timing": "host",
        "time": when,
    }
