"""Validation on exact rank-dependent data, outside every timed region, naming where bad data came from.

(op, layout, buffers) -> (wrong elements summed over ranks, ';'-joined world ranks whose data arrived wrong)
Data-movement results say their source block by block. A wrong reduction is followed by a checked
all-gather of every rank's contribution: the rank whose block arrives wrong is the source; if the
all-gather is clean, the fault is in the reduction itself and the source is '?'.
"""

import numpy as np

from .. import ops

NOT_CHECKED = -1  # a rank whose buffers hold no checkable result (a non-root of reduce, say)
ISOLATE_MAX_ELEMS = 1 << 16  # per-rank block of the isolating all-gather: enough to see a bad sender


def input_view(name: str, layout: ops.Layout, send, recv, in_place: bool, rank: int):
    """Return where this rank's input goes (nccl-tests' in-place layout: allgather sends from its block)."""
    if not in_place:
        return send[: layout.send_count]
    if name == "allgather":
        return recv[rank * layout.block : (rank + 1) * layout.block]
    return recv[: layout.send_count]


INDEX_BYTES = 20  # per checked element: the int64 index and pattern terms (and numpy's temporaries)
TOLERANT_BYTES = 24  # more per element when a float result is compared in float64 within ulps


def tolerant(dt: ops.DType, redop: str, nranks: int) -> bool:
    """Return whether results are compared within ulps (a float average, or sums past exact) instead of bit-exact."""
    return dt.exact_below is not None and (redop == "avg" or not ops.exact(dt, nranks))


def working_bytes(dt: ops.DType, redop: str, nranks: int, elems: int) -> int:
    """Return the bytes one rank's check allocates for `elems` result elements, beside the buffers.

    Measured as peak RSS at 128 MiB, 2 ranks (2-core VM): 18 B/element for int8 sum, 24 for float, 31 for
    double, 44 for float avg; this estimate is at or above each (docs/methodology.md, "Memory").
    """
    return elems * (INDEX_BYTES + 2 * dt.size + (TOLERANT_BYTES if tolerant(dt, redop, nranks) else 0))


def wrong_mask(xp, got, want, dt: ops.DType, redop: str, nranks: int):
    """Return the elements of `got` that differ from `want` (bit-exact; 2 ulps for a float average)."""
    if not tolerant(dt, redop, nranks):
        return got != want
    ulps = 2 if ops.exact(dt, nranks) else 2 * nranks  # nccl-tests allows 2 ulps for floating-point avg
    eps = 2.0 / dt.exact_below  # one ulp at 1.0 in `dt` itself (bfloat16's, even when held as float32)
    want64 = want.astype(xp.float64)
    return xp.abs(got.astype(xp.float64) - want64) > ulps * eps * xp.maximum(xp.abs(want64), 1.0)


def run_checked(ctx, name, dt, redop, root, layout, send, recv, in_place) -> tuple[int, np.ndarray]:
    """Run one checked `name` op; return (wrong elements here, wrong elements per source rank)."""
    comm, backend, xp = ctx.comm, ctx.backend, ctx.backend.xp
    rank, nranks, operation = comm.rank, comm.size, ops.OPS[name]
    data_op = redop if operation.reduction else "sum"  # data movement checks the sum pattern
    pattern_dt = backend.value_dtype(dt)  # the dtype values are computed in before backend.encode
    values = operation.send(xp, pattern_dt, data_op, layout, rank, nranks)
    if ctx.injector.corrupt:
        values = ops.corrupt(xp, values, data_op)
    recv[: max(layout.recv_count, layout.send_count if in_place else 0)] = 0  # no stale result passes
    input_view(name, layout, send, recv, in_place, rank)[...] = backend.encode(values, dt)
    backend.sync()  # inputs written by device kernels are complete before the op reads them
    call, result = backend.prepare(name, layout, send, recv, dt=dt, redop=redop, root=root, in_place=in_place)
    call()
    backend.sync()
    per_source = np.zeros(nranks, dtype=np.int64)
    want, sources = operation.expect(xp, pattern_dt, data_op, layout, rank, nranks, root)
    if want is None or result is None:
        return NOT_CHECKED, per_source
    got = backend.decode(result, dt)
    bad = wrong_mask(xp, got, want.astype(got.dtype), dt, data_op, nranks)
    wrong = int(bad.sum())
    if wrong and sources is not None:
        block = layout.block if len(sources) > 1 else layout.count
        for i, source in enumerate(sources):
            per_source[source] += int(bad[i * block : (i + 1) * block].sum())
    return wrong, per_source


def check(ctx, operation, dt, redop, root, layout, send, recv, in_place) -> tuple[int, str]:
    """Return (wrong elements over all ranks, source world ranks as 'a;b', or '?' if unknown)."""
    from mpi4py import MPI

    comm = ctx.comm
    wrong, per_source = run_checked(ctx, operation.name, dt, redop, root, layout, send, recv, in_place)
    checked = wrong != NOT_CHECKED
    totals = np.concatenate(([max(wrong, 0), int(checked)], per_source)).astype(np.int64)
    comm.Allreduce(MPI.IN_PLACE, totals, op=MPI.SUM)
    if totals[1] == 0:
        return NOT_CHECKED, ""  # no rank holds a checkable result (nccl-tests prints N/A)
    per_source = totals[2:]
    if totals[0] == 0:
        return 0, ""
    if operation.reduction:
        per_source = isolate(ctx, dt, layout)
    bad = [ctx.world_ranks[r] for r in np.flatnonzero(per_source)]
    return int(totals[0]), ";".join(map(str, bad)) or "?"


def isolate(ctx, dt, layout) -> np.ndarray:
    """Return wrong elements per source rank in a checked all-gather of every rank's contribution."""
    from mpi4py import MPI

    nranks = ctx.comm.size
    block = max(1, min(layout.send_count, ISOLATE_MAX_ELEMS))
    gather = ops.Layout(block, block, block * nranks, block)
    send, recv = ctx.backend.alloc(block, dt), ctx.backend.alloc(block * nranks, dt)
    _, per_source = run_checked(ctx, "allgather", dt, "sum", 0, gather, send, recv, False)  # never N/A
    ctx.comm.Allreduce(MPI.IN_PLACE, per_source, op=MPI.SUM)
    return per_source
