"""Point-to-point between rank pairs: the OSU trio (latency, bw, bibw), on the collective harness.

PairSweep + world communicator -> rounds of rank pairs -> per pair a 2-rank communicator timed with
measure.plan/time_samples -> one row per (pair, test, size), gathered to rank 0 after each round.
latency = half the round trip (osu_latency); bw and bibw send windows of messages (osu_bw, osu_bibw).
"""

from dataclasses import dataclass

import numpy as np

from . import measure, ops
from .backends.base import Backend
from .errors import NcbenchError
from .units import format_size

TESTS = ("latency", "bw", "bibw")
PAIRINGS = ("neighbours", "first", "all-nodes", "all")
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

    def sizes(self) -> list[int]:
        return measure.Sweep(op="sendrecv", min_bytes=self.min_bytes, max_bytes=self.max_bytes,
                             step_factor=self.step_factor).sizes()  # fmt: skip


def check_pair_sweep(sweep: PairSweep, nranks: int) -> None:
    """Raise NcbenchError for a pair sweep that cannot run."""
    unknown = [t for t in sweep.tests if t not in TESTS]
    if unknown:
        raise NcbenchError(f"unknown p2p test {unknown[0]!r}; choose from {', '.join(TESTS)}")
    if sweep.pairs not in PAIRINGS:
        raise NcbenchError(f"--pairs {sweep.pairs!r}: choose one of {', '.join(PAIRINGS)}")
    if nranks < 2:
        raise NcbenchError("p2p needs at least 2 ranks: launch with mpiexec -n 2 or more")
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


def _latency(pc, buf, rbuf):
    """One round trip: send `buf`, then receive into `rbuf`, in osu_latency's blocking order.

    Persistent requests (MPI_Send_init/Recv_init, then Start + Wait) parse each buffer once instead
    of on every call: mpi4py spends ~0.4 us per buffer argument, a sixth of a 64 KiB round trip.
    """
    peer = 1 - pc.rank
    send, recv = pc.Send_init(buf, peer, DATA_TAG), pc.Recv_init(rbuf, peer, DATA_TAG)
    send_start, send_wait, recv_start, recv_wait = send.Start, send.Wait, recv.Start, recv.Wait
    if pc.rank == 0:
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


def _window(pc, buf, rbuf, window: int, both: bool):
    from mpi4py import MPI

    peer, ack = 1 - pc.rank, np.zeros(1, dtype=np.uint8)
    waitall = MPI.Request.Waitall
    buf, rbuf = [MPI.buffer(buf), len(buf), MPI.BYTE], [MPI.buffer(rbuf), len(rbuf), MPI.BYTE]  # parsed once
    if both:
        def call():  # bibw: both sides post a window of receives and a window of sends
            reqs = [pc.Irecv(rbuf, peer, DATA_TAG) for _ in range(window)]
            reqs += [pc.Isend(buf, peer, DATA_TAG) for _ in range(window)]
            waitall(reqs)
        return call
    if pc.rank == 0:
        def send_window():
            waitall([pc.Isend(buf, peer, DATA_TAG) for _ in range(window)])
            pc.Recv(ack, peer, ACK_TAG)
        return send_window

    def recv_window():
        waitall([pc.Irecv(rbuf, peer, DATA_TAG) for _ in range(window)])
        pc.Send(ack, peer, ACK_TAG)
    return recv_window


def measure_pair(sweep: PairSweep, pc, pair: tuple[int, int], injector, watchdog, job) -> list[dict]:
    """Measure every test and size between the two ranks of `pc`; return rows (on its rank 0)."""
    from .backends.mpi import host_buffer
    from .records import now_iso

    peer_world = pair[1 - pc.rank]
    pre = injector.pre_p2p(peer_world)
    rows = []
    buf, rbuf = host_buffer(sweep.max_bytes), host_buffer(sweep.max_bytes)
    for nbytes in sweep.sizes():
        s, r = buf[:nbytes], rbuf[:nbytes]
        for test in sweep.tests:
            raw, requests = _latency(pc, s, r) if test == "latency" else (_window(pc, s, r, sweep.window, test == "bibw"), ())
            call = measure._timed_call(raw, pre)
            what = f"p2p {test} {format_size(nbytes)} between ranks {pair[0]} and {pair[1]}"
            watchdog.arm(what)
            for _ in range(sweep.warmup):
                call()
            state: dict = {}
            iters, samples, _ = measure.plan(sweep, pc, call, lambda: None, state)
            run = Backend().batch(raw, pre, iters)
            per_rank, _ = measure.time_samples(pc, run, lambda: None, iters, samples, watchdog, what)
            watchdog.disarm()
            for request in requests:
                request.Free()
            slowest = np.max(np.stack(pc.allgather(per_rank)), axis=0)  # per sample, seconds per call
            if pc.rank == 0:
                same_node = job.node_of[pair[0]] == job.node_of[pair[1]]
                rows.append(_row(test, nbytes, slowest, sweep, iters, samples, pair, 1 if same_node else 2, now_iso()))
        wrong = check_pair(pc, s, r, injector) if sweep.check else -1
        for row in rows[-len(sweep.tests):] if pc.rank == 0 else []:
            row["wrong"] = wrong
            row["wrong_sources"] = str(pair[0]) if wrong > 0 else ""
    return rows


def check_pair(pc, send, recv, injector) -> int:
    """Send the sum pattern from the pair's rank 0 to its rank 1; return wrong bytes (on both ranks)."""
    dt = ops.DTYPES["uint8"]
    values = ops.contribution(np, dt, "sum", 0, 0, len(send), 2)
    if pc.rank == 0:
        send[:] = ops.corrupt(np, values, "sum") if injector.corrupt else values
        pc.Send(send, 1, DATA_TAG)
        wrong = 0
    else:
        recv[:] = 0
        pc.Recv(recv, 0, DATA_TAG)
        wrong = int((recv != values).sum())
    return pc.allreduce(wrong)


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
        "op": test, "backend": "mpi", "dtype": "uint8", "redop": "none", "root": -1, "in_place": False,
        "nranks": 2, "nnodes": nnodes, "ranks_per_node": -1,
        "nbytes": nbytes, "count": nbytes, "warmup": sweep.warmup, "iters": iters, "samples": samples,
        "time_us": mean_us, "time_us_min": float(times_us.min()), "time_us_p50": float(np.median(times_us)),
        "time_us_p99": float(np.percentile(times_us, 99)), "time_us_max": float(times_us.max()),
        "time_us_std": float(times_us.std()), "cv": float(times_us.std() / mean_us) if mean_us else 0.0,
        "algbw_GBps": bandwidth, "busbw_GBps": bandwidth, "wrong": -1, "wrong_sources": "",
        "slowest_rank": -1, "slowest_host": "", "lateness_us": 0.0,
        "peer_a": pair[0], "peer_b": pair[1], "timing": "host", "time": when,
    }  # fmt: skip
