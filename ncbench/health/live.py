"""The health suite under mpirun: rank 0 coordinates rounds; every rank runs its tests against a deadline.

Each round: rank 0 sends every rank its tasks (point-to-point, no collective that a stalled rank could
hang), each rank runs them with nonblocking MPI polled until the round's deadline, and reports back;
a rank that does not report in time is named UNREACHABLE and left out of later rounds. Round:
loopback (a rank with itself), an intra-node allreduce, pair exchanges, one-way fabric flows, and a
whole-job allreduce. Each moves a known pattern, so wrong data is attributed to the rank that sent it.
"""

import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..errors import EXIT_UNKNOWN
from .suite import Results, Round, Suite

ASSIGN_TAG, RESULT_TAG = 7101, 7102
TEST_TAG_BASE = 8000  # + round number: a late message from an abandoned test can never match a later round
REPORT_GRACE_S = 2.0  # rank 0 waits this much past the test deadline for reports
SAMPLE_GAP_S = 1e-3  # between samples: spread over time, the best sample escapes a disturbance of a few ms
ASSIGN_WAIT = 2.5  # a rank gives rank 0 this many test deadlines (+10 s) to send the next round
SHARED_CORES_NOISE = 0.37  # ranks outnumber cores: clean tests measured 0.33-1.27x of their peers on the 2-core VM
# (12 ranks' tests over 20 runs, before pinning), so only a strike below (1 - 0.37)^3 = 0.25x can be a FAIL
POLL_MIN_S, POLL_MAX_S = 2e-3, 5e-3  # idle ranks poll this rarely: at 0.1 ms their wakeups on shared cores
# moved clean exchanges from 0.88-1.19x to 0.60-1.35x of their peers (24 confirm tests each, 2-core VM)


def _say(message: str) -> None:
    sys.stderr.write(f"ncbench: {message}\n")
    sys.stderr.flush()


def pattern(nbytes: int, sender: int, round_no: int) -> np.ndarray:
    """Return the bytes `sender` sends in `round_no`'s checked exchange (the receiver knows them too)."""
    return ((np.arange(nbytes, dtype=np.int64) + 7 * sender + 13 * round_no) % 251).astype(np.uint8)


@dataclass
class Where:
    """What one rank needs to run tasks: communicators, faults, its own world rank."""

    comm: object
    node_comm: object
    injector: object
    timeout_s: float
    suite: Suite


def _wait(requests, deadline: float) -> bool:
    """Poll until every request completes (True) or the deadline passes (False); never blocks in MPI."""
    from mpi4py import MPI

    testall = MPI.Request.Testall
    while not testall(requests):
        if time.monotonic() > deadline:
            return False
        os.sched_yield()  # ranks may share cores: let the partner run
    return True


def _abandon(requests) -> None:
    for request in requests:
        try:
            request.Cancel()
        except Exception:  # noqa: BLE001, S110 - a send may not be cancellable; the job ends soon anyway
            pass


def _best_time(once, suite: Suite) -> tuple[float, float] | None:
    """Return (the best sample's seconds per operation, the test's own spread); None past the deadline.

    Samples are spread over time with a short gap, each after an untimed operation that re-aligns
    both ends: a check passes on its best repeat, and a best repeat must escape a passing disturbance.
    The spread, 1 - best / median sample time, is how far this test's own samples scatter: a slow value
    must lie beyond it (and beyond its peers') before it counts (docs/health.md, "Noise").
    """
    from mpi4py import MPI

    times = []
    for _ in range(suite.samples):
        time.sleep(SAMPLE_GAP_S)
        if not once():
            return None
        t0 = MPI.Wtime()
        for _ in range(suite.iters):
            if not once():
                return None
        times.append((MPI.Wtime() - t0) / suite.iters)
    best = min(times)
    return best, 1.0 - best / float(np.median(times))


def _exchange(where: Where, dst, src, nbytes: int, tag: int, round_no: int, deadline: float, buffers):
    """Send nbytes to dst while receiving nbytes from src (either may be None), timed.

    Return ((best seconds per exchange, own spread), or None past the deadline; bytes received wrong).
    """
    from mpi4py import MPI

    comm, inj = where.comm, where.injector
    sbuf, rbuf = buffers(nbytes)
    send_hook = inj.pre_p2p(dst) if dst is not None else None
    recv_hook = inj.pre_p2p(src) if src is not None and src != dst else None
    s_msg, r_msg = [MPI.buffer(sbuf), nbytes, MPI.BYTE], [MPI.buffer(rbuf), nbytes, MPI.BYTE]

    def once() -> bool:
        requests = []
        if src is not None:
            if recv_hook:
                recv_hook()
            requests.append(comm.Irecv(r_msg, src, tag))
        if dst is not None:
            if send_hook:
                send_hook()
            requests.append(comm.Isend(s_msg, dst, tag))
        if not _wait(requests, deadline):
            _abandon(requests)
            return False
        return True

    best = _best_time(once, where.suite)
    if best is None:
        return None, 0
    sbuf[:] = pattern(nbytes, comm.rank, round_no)
    if inj.corrupt:
        sbuf[::97] ^= 0x5A  # this rank's data goes out wrong
    rbuf[:] = 0
    if not once():
        return None, 0
    wrong = int((rbuf != pattern(nbytes, src, round_no)).sum()) if src is not None else 0
    return best, wrong


def _allreduce(where: Where, comm, nbytes: int, deadline: float):
    """Time a nonblocking allreduce of nbytes on `comm`; return ((seconds per op, spread) or None, wrong)."""
    from mpi4py import MPI

    count = max(1, nbytes // 4)
    send, recv = np.ones(count, dtype=np.float32), np.zeros(count, dtype=np.float32)
    hook = where.injector.pre_op()

    def once() -> bool:
        if hook:
            hook()
        request = comm.Iallreduce(send, recv, MPI.SUM)
        if not _wait([request], deadline):
            _abandon([request])
            return False
        return True

    best = _best_time(once, where.suite)
    return best, int((recv != comm.size).sum()) if best is not None else 0


def execute(where: Where, tasks: list[dict], round_no: int, deadline: float, buffers) -> list[dict]:
    """Run this rank's tasks of one round in order; return one report per task."""
    tag = TEST_TAG_BASE + round_no % 20000
    reports = []
    for task in tasks:
        with _pinned(task.get("cpu")):
            reports.append(_run_task(where, task, tag, round_no, deadline, buffers))
    return reports


class _pinned:
    """Hold this rank on one core while a serialised test runs, so its two ends never share a core.

    With ranks outnumbering cores, two ends left on one core take turns: a clean pair measured 0.33x of
    its peers three times running on the 2-core VM, while pinned ends do not (docs/health.md, "Noise").
    """

    def __init__(self, slot):
        self.slot, self.saved = slot, None

    def __enter__(self):
        if self.slot is not None and hasattr(os, "sched_setaffinity"):
            self.saved = os.sched_getaffinity(0)
            cores = sorted(self.saved)
            os.sched_setaffinity(0, {cores[self.slot % len(cores)]})

    def __exit__(self, *exc):
        if self.saved is not None:
            os.sched_setaffinity(0, self.saved)


def _run_task(where: Where, task: dict, tag: int, round_no: int, deadline: float, buffers) -> dict:
    """Run one test on this rank; return its report (value in GB/s, own spread, bytes wrong)."""
    kind, nbytes = task["kind"], task["nbytes"]
    if kind in ("allreduce", "world"):
        comm = where.node_comm if kind == "allreduce" else where.comm
        timed, wrong = _allreduce(where, comm, nbytes, deadline)
        factor = 2 * (comm.size - 1) / comm.size if comm.size > 1 else 1.0
    else:
        timed, wrong = _exchange(where, task["dst"], task["src"], nbytes, tag, round_no, deadline, buffers)
        factor = 1.0
    seconds, spread = timed if timed else (None, float("nan"))
    value = nbytes / seconds / 1e9 * factor if seconds else float("nan")
    report = {"i": task["i"], "value": value, "spread": spread, "wrong": wrong, "from": task.get("from")}
    if "also" in task:
        report["also"] = task["also"]
    return report


class Buffers:
    """Host send/receive buffers by size, allocated once (2 MiB-aligned, huge pages, touched)."""

    def __init__(self):
        self._cache: dict[int, tuple] = {}

    def __call__(self, nbytes: int):
        from ..measure.backends.mpi import host_buffer

        if nbytes not in self._cache:
            self._cache[nbytes] = (host_buffer(max(nbytes, 1)), host_buffer(max(nbytes, 1)))
        s, r = self._cache[nbytes]
        return s[:nbytes], r[:nbytes]


def serve(where: Where) -> int:
    """Every rank but 0: run rounds until rank 0 says stop; return its exit code (exit 3 if it falls silent)."""
    from mpi4py import MPI

    comm, buffers = where.comm, Buffers()
    wait_s = ASSIGN_WAIT * where.timeout_s + 10.0
    while True:
        deadline = time.monotonic() + wait_s
        status = MPI.Status()
        nap = POLL_MIN_S
        while not comm.iprobe(source=0, tag=ASSIGN_TAG, status=status):
            if time.monotonic() > deadline:
                _say(
                    f"rank {comm.rank} heard nothing from rank 0 for {wait_s:g} s; rank 0 stopped answering; "
                    f"ending (exit {EXIT_UNKNOWN})"
                )
                os._exit(EXIT_UNKNOWN)
            time.sleep(nap)
            nap = min(nap * 2, POLL_MAX_S)
        message = comm.recv(source=0, tag=ASSIGN_TAG)
        if message[0] == "stop":
            return message[1]
        _, round_no, tasks, budget_s = message
        if where.injector.stall_at_checkpoint:
            from ..measure.inject import stall_forever

            stall_forever()
        reports = execute(where, tasks, round_no, time.monotonic() + budget_s, buffers)
        comm.send(("result", round_no, reports), dest=0, tag=RESULT_TAG)


class MPIRunner:
    """Rank 0's side of the suite: turns a round of node tests into rank tasks, runs its own, gathers reports."""

    def __init__(self, where: Where, job, names: list[str], rails: int, *, serial: bool = False, record=None):
        self.where, self.job, self.names, self.rails = where, job, names, rails
        self.rank_of = [[r for r, node in enumerate(job.node_of) if node == n][:rails] for n in range(job.nnodes)]
        self.unreachable = np.zeros(job.nnodes, dtype=bool)
        self.node_allreduce = rails > 1
        self.round_no = 0
        self.serial = serial  # concurrent tests on shared cores would measure the scheduler, not the fabric
        self.noise_floor = SHARED_CORES_NOISE if serial else 0.0
        self.record = record
        self.buffers = Buffers()

    def _tasks(self, tests: Round) -> dict[int, list[dict]]:
        """Return world rank -> its tasks; a pair is a task on each end, a flow a send task and a receive task."""
        tasks: dict[int, list[dict]] = {}
        for i in range(len(tests)):
            kind, a, b, rail, nbytes = (
                str(tests.kind[i]),
                int(tests.a[i]),
                int(tests.b[i]),
                int(tests.rail[i]),
                int(tests.nbytes[i]),
            )
            if kind == "world":
                ranks = [(r, "a", {}) for r in range(self.where.comm.size)]
            elif kind == "allreduce":
                ranks = [(r, "a", {}) for r in self.rank_of[a]]
            elif kind == "loopback":
                me = self.rank_of[a][rail]
                ranks = [(me, "a", {"dst": me, "src": me, "from": (i, "a")})]
            elif kind == "flow":  # one way, a -> b; the receiver checks the bytes
                ra, rb = self.rank_of[a][rail], self.rank_of[b][rail]
                ranks = [(ra, "a", {"dst": rb, "src": None}), (rb, "b", {"dst": None, "src": ra, "from": (i, "a")})]
            else:  # pair, confirm, retest: an exchange, each end checking what the other sent
                ra, rb = self.rank_of[a][rail], self.rank_of[b][rail]
                ranks = [
                    (ra, "a", {"dst": rb, "src": rb, "from": (i, "b")}),
                    (rb, "b", {"dst": ra, "src": ra, "from": (i, "a")}),
                ]
            for rank, role, extra in ranks:
                if self.serial and len(ranks) <= 2:  # one test at a time: its ends on distinct cores
                    extra = {**extra, "cpu": 0 if role == "a" else 1}
                tasks.setdefault(rank, []).append({"i": i, "kind": kind, "role": role, "nbytes": nbytes, **extra})
        return {r: sorted(t, key=lambda x: x["kind"] not in ("loopback",)) for r, t in tasks.items()}

    def _flows_as_sendrecv(self, tasks: dict) -> None:
        """A rank in a shift round sends one flow and receives another at once: merge them into one exchange."""
        for rank, mine in tasks.items():
            flows = [t for t in mine if t["kind"] == "flow"]
            if len(flows) == 2:
                out = next(t for t in flows if t["role"] == "a")
                into = next(t for t in flows if t["role"] == "b")
                merged = {**out, "src": into["src"], "from": into["from"], "also": into["i"]}
                tasks[rank] = [t for t in mine if t["kind"] != "flow"] + [merged]

    def round(self, stage: str, tests: Round) -> Results:
        """Run one round; with `serial` (ranks outnumber cores) its tests run one after another."""
        groups = [np.arange(len(tests))] if not self.serial else [np.array([i]) for i in range(len(tests))]
        value, spread = np.full(len(tests), np.nan), np.full(len(tests), np.nan)
        wrong_a, wrong_b = np.zeros(len(tests), dtype=bool), np.zeros(len(tests), dtype=bool)
        for pick in groups:
            part = self._run(stage, tests.take(pick))
            value[pick], spread[pick] = part.value, part.spread
            wrong_a[pick], wrong_b[pick] = part.wrong_a, part.wrong_b
        results = Results(value, wrong_a, wrong_b, spread)
        if self.record:
            self.record(stage, self.round_no, tests, results)
        return results

    def _run(self, stage: str, tests: Round) -> Results:
        from mpi4py import MPI

        comm = self.where.comm
        self.round_no += 1
        tasks = self._tasks(tests)
        self._flows_as_sendrecv(tasks)
        alive_ranks = [r for r in range(comm.size) if not self.unreachable[self.job.node_of[r]]]
        budget = self.where.timeout_s
        start = time.monotonic()
        for r in alive_ranks:
            if r != 0:
                comm.send(("round", self.round_no, tasks.get(r, []), budget), dest=r, tag=ASSIGN_TAG)
        if self.where.injector.stall_at_checkpoint:
            from ..measure.inject import stall_forever

            stall_forever()
        reports = (
            {0: execute(self.where, tasks.get(0, []), self.round_no, start + budget, self.buffers)}
            if 0 in alive_ranks
            else {}
        )
        waiting = set(alive_ranks) - {0}
        status, nap = MPI.Status(), POLL_MIN_S
        while waiting and time.monotonic() < start + budget + REPORT_GRACE_S:
            if comm.iprobe(source=MPI.ANY_SOURCE, tag=RESULT_TAG, status=status):
                source = status.Get_source()
                _, round_no, got = comm.recv(source=source, tag=RESULT_TAG)
                if round_no == self.round_no:
                    reports[source] = got
                    waiting.discard(source)
            else:
                time.sleep(nap)
                nap = min(nap * 2, POLL_MAX_S)
        for r in sorted(waiting):
            node = self.job.node_of[r]
            if not self.unreachable[node]:
                _say(
                    f"rank {r} ({self.names[node]}) did not report round {self.round_no} ({stage}) within "
                    f"{budget + REPORT_GRACE_S:g} s; it is left out from now on (UNKNOWN)"
                )
            self.unreachable[node] = True
        return self._combine(tests, reports)

    def _combine(self, tests: Round, reports: dict[int, list[dict]]) -> Results:
        """Each test's value is its slowest end's, its spread the wider end's; wrong data is charged to the sender."""
        n = len(tests)
        value, spread = np.full(n, np.inf), np.zeros(n)
        seen = np.zeros(n, dtype=bool)
        wrong_a, wrong_b = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        ends_expected = np.where(tests.kind == "loopback", 1, 2)
        ends = np.zeros(n, dtype=np.int64)
        for got in reports.values():
            for rep in got:
                for i in [rep["i"]] + ([rep["also"]] if "also" in rep else []):
                    value[i] = min(value[i], rep["value"])
                    spread[i] = max(spread[i], rep.get("spread", 0.0))
                    seen[i] = True
                    ends[i] += 1
                if rep["wrong"] and rep.get("from"):  # the bytes this end received came from that test's end
                    i, end = rep["from"]
                    (wrong_a if end == "a" else wrong_b)[i] = True
        collective = np.isin(tests.kind, ("allreduce", "world"))
        complete = seen & (collective | (ends >= ends_expected))
        value[~complete], spread[~complete] = np.nan, np.nan
        return Results(value, wrong_a, wrong_b, spread)
