"""The one timing harness (nccl-tests' common.cu in Python), run on every rank under mpirun.

Sweep + communicator + backend -> one result row per Point (op, dtype, redop, root, size, placement),
handed to `emit` as measured.
Per size and placement: warm-up, an iteration count calibrated to the time budget (agreed on rank 0),
timed samples of back-to-back operations after a barrier (the slowest rank's time per sample), a
straggler probe, then validation on exact rank-dependent data, never inside a timed region.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .. import ops
from ..errors import EXIT_UNKNOWN, NcbenchError
from ..units import format_size

CALIBRATE_MIN_S = 2e-3  # time at least this much when estimating one op (20x MPI_Wtime's resolution and cost)
CALIBRATE_MAX_OPS = 1 << 16
MAX_ITERS = 100_000  # per sample: a ceiling, as IMB and OSU clamp theirs (docs/methodology.md)
MIN_SAMPLES = 3  # fewest samples kept when one op alone exceeds the budget: a median needs three
PROBE_OPS = 16  # operations timed one by one to find a late rank
PROBE_BUDGET_FRACTION = 0.25  # of the size's time budget, at most, spent probing
LATE_SHARE = 0.75  # a rank is "consistently slowest" when it arrives last this often ...
LATE_MIN_FRACTION = 0.1  # ... and by at least this fraction of the op time ...
LATE_MIN_US = 5.0  # ... and at least this many microseconds (below this, arrival order is noise)
EVERY_ROOT = -1  # Sweep.roots == (EVERY_ROOT,): nccl-tests' -r -1, every rank in turn (see Sweep.every_root)


@dataclass(frozen=True)
class Sweep:
    """What to measure; parameters only (the CLI fills them from nccl-tests' flags)."""

    op: str
    backend: str = "mpi"
    min_bytes: int = 8
    max_bytes: int = 32 << 20
    step_factor: float = 2.0  # > 1: multiply each size; otherwise add step_bytes
    step_bytes: int = 1 << 20
    dtypes: tuple[str, ...] = ("float",)
    redops: tuple[str, ...] = ("sum",)
    roots: tuple[int, ...] = (0,)  # (EVERY_ROOT,) for -r -1: every rank of the job, spelled out by every_root()
    iters: int | None = None  # fixed operations per sample; None: calibrated to time_budget_s
    warmup: int = 5
    samples: int = 10
    time_budget_s: float = 0.1  # per size and placement
    check: int = 1  # checked operations per size and placement; 0 turns validation off
    cycles: int = 1  # repeat the whole sweep (nccl-tests -N)

    def sizes(self) -> list[int]:
        """Return the requested sizes in bytes, nccl-tests' way (factor, or linear step)."""
        out, size = [], self.min_bytes
        while size <= self.max_bytes:
            out.append(size)
            size = int(size * self.step_factor) if self.step_factor > 1 else size + self.step_bytes
        return out

    def every_root(self, nranks: int) -> "Sweep":
        """Return this sweep with roots (EVERY_ROOT,) spelled out as ranks 0 to nranks - 1.

        Only a rooted op is spelled out: any other keeps -1, so check_sweep refuses it by the flag's value.
        """
        if self.roots != (EVERY_ROOT,) or not ops.op(self.op).rooted:
            return self
        return replace(self, roots=tuple(range(nranks)))


def check_sweep(sweep: Sweep, nranks: int) -> None:
    """Raise NcbenchError for a sweep that cannot run on `nranks` ranks."""
    operation = ops.op(sweep.op)
    if sweep.min_bytes < 0 or sweep.max_bytes < 0:
        raise NcbenchError(f"sizes must be positive, not -b {sweep.min_bytes} -e {sweep.max_bytes}")
    if sweep.min_bytes > sweep.max_bytes:
        raise NcbenchError(f"minimum size {sweep.min_bytes} B is larger than maximum size {sweep.max_bytes} B")
    if sweep.step_factor > 1 and sweep.min_bytes == 0:
        raise NcbenchError("a sweep that multiplies sizes (-f) cannot start at 0 B; use -b 1 or more")
    if sweep.step_factor <= 1 and sweep.step_bytes <= 0 and sweep.min_bytes != sweep.max_bytes:
        raise NcbenchError(f"step {sweep.step_bytes} B never reaches {sweep.max_bytes} B; use -i > 0 or -f > 1")
    for name in sweep.dtypes:
        size = ops.dtype(name).size
        for flag, value in (("-b", sweep.min_bytes), ("-e", sweep.max_bytes)):
            if value % size:
                raise NcbenchError(f"{flag} {value} B is not a whole number of {name} elements ({size} B each)")
        if sweep.step_factor <= 1 and sweep.step_bytes % size:
            raise NcbenchError(f"-i {sweep.step_bytes} B is not a whole number of {name} elements ({size} B each)")
    if not operation.reduction and sweep.redops != ("sum",):
        raise NcbenchError(f"{sweep.op} takes no reduction op (-o {','.join(sweep.redops)}); it only moves data")
    if not operation.rooted and sweep.roots != (0,):
        roots = ",".join(map(str, sweep.roots))
        raise NcbenchError(f"{sweep.op} has no root (-r {roots}); only broadcast and reduce do")
    for root in sweep.roots:
        if not 0 <= root < nranks:
            raise NcbenchError(f"root {root} does not exist: this communicator has ranks 0-{nranks - 1}")
    for name in sweep.redops:
        if name not in ops.REDOPS:
            raise NcbenchError(f"unknown reduction op {name!r}; choose one of {', '.join(ops.REDOPS)} or 'all'")
    positive = (("-n", sweep.iters or 1), ("--samples", sweep.samples), ("-N", sweep.cycles))
    for flag, value in positive:
        if value < 1:
            raise NcbenchError(f"{flag} must be at least 1, not {value}")
    if sweep.warmup < 0 or sweep.check < 0 or sweep.time_budget_s <= 0:
        raise NcbenchError("-w and -c must be >= 0 and --time-budget > 0")


@dataclass(frozen=True)
class Point:
    """One measurement point, one result row: what is measured (the buffers it runs on are not part of it)."""

    operation: ops.Op
    dt: ops.DType
    redop: str  # measured as given; a row of an op without reduction says "none"
    root: int  # measured as given; a row of an unrooted op says -1
    layout: ops.Layout  # element counts at this size and communicator size
    in_place: bool

    def describe(self, with_redop: bool = False) -> str:
        """Return 'allreduce 8B float [sum] (out-of-place)': how messages name one measurement."""
        placement = "in-place" if self.in_place else "out-of-place"
        redop = f"{self.redop} " if with_redop and self.redop else ""
        size = format_size(self.layout.nbytes(self.dt.size))
        return f"{self.operation.name} {size} {self.dt.name} {redop}({placement})"


@dataclass
class Context:
    """What the harness needs besides the sweep: communicator, backend, guard, faults, who is who."""

    comm: object
    backend: object
    guard: object
    injector: object
    world_ranks: list[int]
    hosts: list[str]
    nnodes: int
    ranks_per_node: int


def rank_bytes(sweep: Sweep, operation, nranks: int) -> int:
    """Return the most host or device memory one rank allocates: send and receive buffers (`run` below)
    plus the check's working set (validate.working_bytes), at the largest size and the widest dtype."""
    from . import validate

    need = 0
    for dt in map(ops.dtype, sweep.dtypes):
        big = operation.layout(sweep.max_bytes, nranks, dt.size)
        elems = max(big.send_count, big.recv_count)
        check = max((validate.working_bytes(dt, r, nranks, elems) for r in sweep.redops), default=0)
        need = max(need, 2 * elems * dt.size + (check if sweep.check else 0))
    return need


def run(sweep: Sweep, ctx: Context, emit: Callable[[dict], None]) -> None:
    """Measure the whole sweep, calling emit(row) on rank 0 for each row as soon as it exists."""
    operation = ops.op(sweep.op)
    nranks = ctx.comm.size
    for _cycle in range(sweep.cycles):
        for dtype_name in sweep.dtypes:
            dt = ops.dtype(dtype_name)
            big = operation.layout(sweep.max_bytes, nranks, dt.size)
            elems = max(big.send_count, big.recv_count)  # in-place ops keep their input in recv
            send, recv = ctx.backend.alloc(elems, dt), ctx.backend.alloc(elems, dt)
            for redop in sweep.redops:
                for root in sweep.roots:
                    state = {"iters": None, "est_s": None}  # carried across sizes: N never grows with size
                    for nbytes in sweep.sizes():
                        layout = operation.layout(nbytes, nranks, dt.size)
                        ctx.guard.checkpoint(f"{sweep.op} {format_size(layout.nbytes(dt.size))} {dt.name}")
                        for in_place in (False, True):
                            point = Point(operation, dt, redop, root, layout, in_place)
                            row = measure_one(sweep, ctx, point, send, recv, state)
                            if ctx.comm.rank == 0:
                                emit(row)


def _timed_call(raw, pre):
    if pre is None:
        return raw

    def call():
        pre()
        raw()

    return call


def measure_one(sweep: Sweep, ctx: Context, point: Point, send, recv, state: dict) -> dict:
    """Measure one point on the buffers `send` and `recv`; return the row (complete on rank 0).

    An error the backend's library raises (NCCL refusing a call) is one sentence naming the operation
    and the rank, exit 3: the run could not measure, which is not a bug of ncbench's.
    """
    try:
        return _measure_one(sweep, ctx, point, send, recv, state)
    except NcbenchError:
        raise
    except Exception as err:
        reason = ctx.backend.failure(err)
        if reason is None:
            raise
        what = point.describe(with_redop=True)
        raise NcbenchError(f"{reason} in {what} on rank {ctx.world_ranks[ctx.comm.rank]}", EXIT_UNKNOWN) from None


def _measure_one(sweep: Sweep, ctx: Context, point: Point, send, recv, state: dict) -> dict:
    comm, backend, p = ctx.comm, ctx.backend, point
    raw, _ = backend.prepare(
        p.operation.name, p.layout, send, recv, dt=p.dt, redop=p.redop, root=p.root, in_place=p.in_place
    )
    pre = ctx.injector.pre_op()
    call = _timed_call(raw, pre)
    what = point.describe()
    watchdog = ctx.guard.watchdog
    watchdog.arm(what)
    for _ in range(sweep.warmup):
        call()
    backend.sync()
    iters, samples, est_s = plan(sweep, comm, call, backend.sync, state)
    run = backend.batch(raw, pre, iters)
    iters = backend.ops_per_batch(iters)  # what one sample times, and what the row reports
    per_rank = time_samples(comm, run, backend.sync, iters, samples, watchdog, what, backend.timer())
    probe_n = max(1, min(PROBE_OPS, int(sweep.time_budget_s * PROBE_BUDGET_FRACTION / max(est_s, 1e-9))))
    in_op = probe(comm, raw, pre, backend.sync, probe_n) if comm.size > 1 else None
    watchdog.disarm()
    checked = validate(sweep, ctx, point, send, recv)
    gathered = comm.gather((per_rank, in_op), root=0)
    if comm.rank != 0:
        return {}
    return build_row(sweep, ctx, point, iters, samples, gathered, checked)


def plan(sweep: Sweep, comm, call, sync, state: dict) -> tuple[int, int, float]:
    """Return (iters per sample, samples, estimated seconds per op), the same on every rank."""
    from mpi4py import MPI

    k, elapsed = 1, 0.0
    while True:  # time k ops, k growing until the estimate is well above timer noise
        comm.Barrier()
        t0 = MPI.Wtime()
        for _ in range(k):
            call()
        sync()
        elapsed = comm.allreduce(MPI.Wtime() - t0, op=MPI.MAX)
        if elapsed >= CALIBRATE_MIN_S or k >= CALIBRATE_MAX_OPS or sweep.iters is not None:
            break
        k = min(CALIBRATE_MAX_OPS, k * max(2, int(CALIBRATE_MIN_S / max(elapsed, 1e-7) / 2)))
    decision = None
    if comm.rank == 0:
        est_s = elapsed / k
        decision = _decide(sweep, est_s, state.get("iters"))
    iters, samples, est_s = comm.bcast(decision, root=0)  # decided on rank 0: ranks that disagree deadlock
    state["iters"] = iters
    return iters, samples, est_s


def _decide(sweep: Sweep, est_s: float, previous_iters: int | None) -> tuple[int, int, float]:
    if sweep.iters is not None:
        return sweep.iters, sweep.samples, est_s
    per_sample_s = sweep.time_budget_s / sweep.samples
    iters = int(max(1, min(MAX_ITERS, per_sample_s / max(est_s, 1e-9))))
    if previous_iters is not None:
        iters = min(iters, previous_iters)  # IMB: never more iterations for a bigger message
    samples = sweep.samples
    if iters == 1 and est_s * samples > sweep.time_budget_s:
        samples = max(MIN_SAMPLES, min(samples, int(sweep.time_budget_s / est_s)))
    return iters, samples, est_s


def time_samples(comm, run, sync, iters: int, samples: int, watchdog, what: str, timer=None):
    """Return this rank's per-op seconds for each sample: (host wall clock, device events or None).

    `run` issues `iters` back-to-back operations (a Python loop, or CUDA-graph launches).
    """
    from mpi4py import MPI

    wtime, barrier = MPI.Wtime, comm.Barrier
    host = np.empty(samples)
    device = np.empty(samples) if timer is not None else None
    for s in range(samples):
        watchdog.arm(what)
        barrier()  # start every rank's clock together; the barrier is outside the timed interval
        t0 = wtime()
        if timer is None:
            run()
            sync()
        else:
            timer.start()
            run()
            timer.stop()
            sync()
            device[s] = timer.elapsed_s() / iters
        host[s] = (wtime() - t0) / iters
    return host, device


def probe(comm, raw, pre, sync, n: int) -> np.ndarray:
    """Return this rank's seconds inside each of `n` operations, its own pre-op work excluded.

    A rank that arrives last spends the least time inside a synchronous collective: the others
    were already waiting for it.
    """
    from mpi4py import MPI

    wtime = MPI.Wtime
    out = np.empty(n)
    comm.Barrier()
    for i in range(n):
        if pre is not None:
            pre()
        t0 = wtime()
        raw()
        sync()
        out[i] = wtime() - t0
    return out


def find_late_rank(in_op: np.ndarray) -> tuple[int, float]:
    """Return (rank, lateness_us) of the rank that consistently arrived last, or (-1, 0.0).

    `in_op` is ranks x operations of seconds spent inside each operation.
    """
    if in_op.shape[0] < 2 or in_op.shape[1] == 0:
        return -1, 0.0
    last = np.argmin(in_op, axis=0)
    counts = np.bincount(last, minlength=in_op.shape[0])
    rank = int(np.argmax(counts))
    ordered = np.sort(in_op, axis=0)
    lateness = np.median(ordered[1:], axis=0) - ordered[0]  # the others' typical wait for the last one
    late_us = float(np.median(lateness[last == rank])) * 1e6
    typical_us = float(np.median(in_op)) * 1e6
    consistent = counts[rank] >= LATE_SHARE * in_op.shape[1]
    if consistent and late_us >= max(LATE_MIN_US, LATE_MIN_FRACTION * typical_us):
        return rank, late_us
    return -1, 0.0


def build_row(sweep: Sweep, ctx: Context, point: Point, iters: int, samples: int, gathered, checked) -> dict:
    """Return the result row from every rank's samples (rank 0 only)."""
    from ..records import now_iso

    operation, dt, layout = point.operation, point.dt, point.layout
    per_sample = np.max(np.stack([g[0][0] for g in gathered]), axis=0) * 1e6  # slowest rank per sample, us
    device_us = float("nan")
    if gathered[0][0][1] is not None:
        device_us = float(np.max(np.stack([g[0][1] for g in gathered]), axis=0).mean() * 1e6)
    nbytes = layout.nbytes(dt.size)
    mean_us = float(per_sample.mean())
    slowest, late_us = -1, 0.0
    if gathered[0][1] is not None:
        slowest, late_us = find_late_rank(np.stack([g[1] for g in gathered]))
    wrong, sources = checked
    return {
        "op": operation.name,
        "backend": sweep.backend,
        "dtype": dt.name,
        "redop": point.redop if operation.reduction else "none",
        "root": point.root if operation.rooted else -1,
        "in_place": point.in_place,
        "nranks": ctx.comm.size,
        "nnodes": ctx.nnodes,
        "ranks_per_node": ctx.ranks_per_node,
        "nbytes": nbytes,
        "count": layout.count,
        "warmup": sweep.warmup,
        "iters": iters,
        "samples": samples,
        "time_us": mean_us,
        "time_us_min": float(per_sample.min()),
        "time_us_p50": float(np.percentile(per_sample, 50)),
        "time_us_p99": float(np.percentile(per_sample, 99)),
        "time_us_max": float(per_sample.max()),
        "time_us_std": float(per_sample.std()),
        "cv": float(per_sample.std() / mean_us) if mean_us > 0 else 0.0,
        "device_time_us": device_us,
        "algbw_GBps": ops.algbw_GBps(nbytes, mean_us),
        "busbw_GBps": ops.busbw_GBps(operation, nbytes, mean_us, ctx.comm.size),
        "wrong": wrong,
        "wrong_sources": sources,
        "slowest_rank": ctx.world_ranks[slowest] if slowest >= 0 else -1,
        "slowest_host": ctx.hosts[slowest] if slowest >= 0 else "",
        "lateness_us": late_us,
        "peer_a": -1,
        "peer_b": -1,
        "timing": ctx.backend.timing,
        "time": now_iso(),
    }


def validate(sweep: Sweep, ctx: Context, point: Point, send, recv) -> tuple[int, str]:
    """Run `sweep.check` checked operations; return (wrong elements over all ranks, source ranks)."""
    from . import validate as checks

    if sweep.check == 0:
        return -1, ""
    p = point
    total, sources = 0, ""
    for _ in range(sweep.check):
        ctx.guard.watchdog.arm(f"checking {p.describe()}")
        wrong, found = checks.check(ctx, p.operation, p.dt, p.redop, p.root, p.layout, send, recv, p.in_place)
        ctx.guard.watchdog.disarm()
        if wrong < 0:
            return wrong, ""  # nothing checkable in this placement
        total += wrong
        sources = sources or found
    return total, sources
