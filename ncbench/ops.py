"""What each operation moves: buffer layout, busbw factor, and the exact data that validates it.

(op, nbytes, nranks, dtype) -> Layout (counts per buffer); (rank, layout) -> inputs and expected outputs.
OPS is the one op table: each Op carries its layout, its busbw factor, and its own `send` and `expect`
functions (nccl-tests' per-op initData and expected data). Pure functions over numpy-like modules (`xp` is
numpy, or cupy on a GPU): no MPI, no device.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import NcbenchError


@dataclass(frozen=True)
class DType:
    name: str  # nccl-tests spelling, printed in the table's `type` column
    numpy: str  # numpy / cupy dtype name
    size: int  # bytes per element
    exact_below: int | None  # floats: integers up to this are exact (2**(mantissa+1)); ints wrap, None


DTYPES = {
    "int8": DType("int8", "int8", 1, None),
    "uint8": DType("uint8", "uint8", 1, None),
    "int32": DType("int32", "int32", 4, None),
    "uint32": DType("uint32", "uint32", 4, None),
    "int64": DType("int64", "int64", 8, None),
    "uint64": DType("uint64", "uint64", 8, None),
    "half": DType("half", "float16", 2, 1 << 11),
    "float": DType("float", "float32", 4, 1 << 24),
    "double": DType("double", "float64", 8, 1 << 53),
    "bfloat16": DType("bfloat16", "bfloat16", 2, 1 << 8),
    "f8e4m3": DType("f8e4m3", "float8_e4m3fn", 1, 1 << 4),  # NCCL >= 2.24 on sm_90+ (nccl-tests -d f8e4m3)
    "f8e5m2": DType("f8e5m2", "float8_e5m2", 1, 1 << 3),
}
DTYPE_ALIASES = {
    "float16": "half",
    "fp16": "half",
    "float32": "float",
    "fp32": "float",
    "float64": "double",
    "fp64": "double",
    "bf16": "bfloat16",
    "char": "int8",
    "int": "int32",
    "float8_e4m3fn": "f8e4m3",
    "fp8e4m3": "f8e4m3",
    "float8_e5m2": "f8e5m2",
    "fp8e5m2": "f8e5m2",
}
NOT_IN_NUMPY = ("bfloat16", "float8_e4m3fn", "float8_e5m2")  # ml_dtypes (JAX's) provides them on hosts
REDOPS = ("sum", "prod", "max", "min", "avg")


def dtype(name: str) -> DType:
    """Return the DType for an nccl-tests or numpy name ('float', 'float32', 'bf16')."""
    key = DTYPE_ALIASES.get(name.lower(), name.lower())
    if key not in DTYPES:
        raise NcbenchError(f"unknown datatype {name!r}; choose one of {', '.join(DTYPES)} or 'all'")
    return DTYPES[key]


@dataclass(frozen=True)
class Layout:
    """Element counts of one call; `count` is what nccl-tests prints (NCCL's count argument)."""

    count: int
    send_count: int
    recv_count: int
    block: int  # elements per rank-block of the gathered/scattered buffer (= count for whole-buffer ops)

    def nbytes(self, elt_size: int) -> int:
        """The nccl-tests `size` column: the larger of the send and receive buffers."""
        return max(self.send_count, self.recv_count) * elt_size


def _whole(nbytes: int, nranks: int, elt: int) -> Layout:
    count = nbytes // elt
    return Layout(count, count, count, count)


def _per_rank(nbytes: int, nranks: int, elt: int) -> int:
    # nccl-tests rounds the per-rank count down to a 16-byte multiple (all_gather.cu getCollByteCount)
    return (nbytes // elt // nranks) & ~(16 // elt - 1)


def _gather(nbytes: int, nranks: int, elt: int) -> Layout:
    base = _per_rank(nbytes, nranks, elt)
    return Layout(base, base, base * nranks, base)


def _scatter(nbytes: int, nranks: int, elt: int) -> Layout:
    base = _per_rank(nbytes, nranks, elt)
    return Layout(base, base * nranks, base, base)


def _alltoall(nbytes: int, nranks: int, elt: int) -> Layout:
    base = _per_rank(nbytes, nranks, elt)
    return Layout(base, base * nranks, base * nranks, base)


@dataclass(frozen=True)
class Op:
    name: str
    layout: Callable[[int, int, int], Layout]  # (nbytes, nranks, element size) -> Layout
    send: Callable[..., Any]  # (xp, dt, redop, layout, rank, nranks) -> this rank's send-buffer values
    expect: Callable[..., tuple]  # (xp, dt, redop, layout, rank, nranks, root) -> (values, sources) or (None, None)
    busbw_top: float | None = None  # busbw = algbw * top * (n-1)/n; None: busbw = algbw
    reduction: bool = False  # takes -o sum|prod|max|min|avg
    rooted: bool = False  # takes -r ROOT

    def busbw_factor(self, nranks):
        """Return busbw / algbw at `nranks`: a float for a number, a float array of its shape for an array.

        nccl-tests doc/PERFORMANCE.md (docs/methodology.md, "Metrics").
        """
        if np.ndim(nranks):
            p = np.asarray(nranks, dtype=float)
            return np.ones_like(p) if self.busbw_top is None else self.busbw_top * (p - 1) / p
        return 1.0 if self.busbw_top is None else self.busbw_top * (nranks - 1) / nranks


def algbw_GBps(nbytes: int, time_us: float) -> float:
    """Return nccl-tests' algbw: size / time, in GB/s (1e9 B/s)."""
    return nbytes / (time_us * 1e3) if time_us > 0 else 0.0


def busbw_GBps(operation: Op, nbytes: int, time_us: float, nranks: int) -> float:
    """Return nccl-tests' busbw: algbw times the op's factor for `nranks`."""
    return algbw_GBps(nbytes, time_us) * operation.busbw_factor(nranks)


# --- validation data -------------------------------------------------------------------------
# Rank r contributes v(r, i) = 1 + i % K + r % L at global index i (prod: 2 where i % p == r, else 1),
# so every reduction has a closed form and no rank needs the others' data to check its result.
# K and L shrink with the rank count so float sums stay exact integers (nccl-tests checks bit-exact).
PATTERN_MAX = 16  # largest K and L: small enough that 1 + K + L + CORRUPT_SHIFT fits in int8


def pattern_shape(dt: DType, nranks: int) -> tuple[int, int]:
    """Return (K, L) for this dtype and rank count."""
    if dt.exact_below is None:
        return PATTERN_MAX, PATTERN_MAX  # integers wrap identically in numpy and in MPI/NCCL
    room = dt.exact_below // (2 * nranks)
    k = max(1, min(PATTERN_MAX, room))
    return k, k


def exact(dt: DType, nranks: int) -> bool:
    """Return True when every reduction of the pattern is exactly representable."""
    if dt.exact_below is None:
        return True
    k, ell = pattern_shape(dt, nranks)
    return nranks * (k + ell - 1) <= dt.exact_below


def contribution(xp: Any, dt: DType, redop: str, rank: int, start: int, n: int, nranks: int) -> Any:
    """Return rank `rank`'s input values at global indices [start, start + n)."""
    i = xp.arange(start, start + n, dtype=xp.int64)
    if redop == "prod":
        return xp.where(i % nranks == rank, 2, 1).astype(_np_dtype(xp, dt))
    k, ell = pattern_shape(dt, nranks)
    return (1 + i % k + rank % ell).astype(_np_dtype(xp, dt))


def reduced(xp: Any, dt: DType, redop: str, start: int, n: int, nranks: int) -> Any:
    """Return the reduction over all ranks of `contribution` at global indices [start, start + n)."""
    out = _np_dtype(xp, dt)
    if redop == "prod":
        return xp.full(n, 2, dtype=out)
    k, ell = pattern_shape(dt, nranks)
    base = 1 + xp.arange(start, start + n, dtype=xp.int64) % k
    rank_terms = [r % ell for r in range(min(nranks, ell))]
    if redop == "max":
        return (base + max(rank_terms)).astype(out)
    if redop == "min":
        return base.astype(out)
    cycles, rest = divmod(nranks, ell)
    rank_sum = cycles * sum(range(ell)) + sum(range(rest))
    total = nranks * base + rank_sum
    if redop == "sum":
        return total.astype(out)
    if redop == "avg":
        if dt.exact_below is None:
            return (total // nranks).astype(out)
        return (total.astype(xp.float64) / nranks).astype(out)
    raise NcbenchError(f"unknown reduction op {redop!r}; choose one of {', '.join(REDOPS)}")


def _np_dtype(xp: Any, dt: DType) -> Any:
    if dt.numpy in NOT_IN_NUMPY and xp.__name__ == "numpy":
        import ml_dtypes

        return getattr(ml_dtypes, dt.numpy)
    return xp.dtype(dt.numpy)


# Injected corruption moves a value outside the legal range in the direction the op would see:
# larger for sum/prod/max/avg and for data movement, below the minimum (1) for min.
CORRUPT_SHIFT = PATTERN_MAX * 2 + 1


def corrupt(xp: Any, values: Any, redop: str) -> Any:
    """Return `values` made wrong in a way every check of this op must notice."""
    if redop == "min":
        return xp.zeros_like(values)
    return values + values.dtype.type(CORRUPT_SHIFT)


# Send patterns: what `rank` puts in its send buffer for one checked call.
def send_whole(xp: Any, dt: DType, redop: str, layout: Layout, rank: int, nranks: int) -> Any:
    """Return the whole send buffer: this rank's contribution at indices [0, send_count)."""
    return contribution(xp, dt, redop, rank, 0, layout.send_count, nranks)


def send_own_block(xp: Any, dt: DType, redop: str, layout: Layout, rank: int, nranks: int) -> Any:
    """Return this rank's block of the gathered buffer: its contribution at its block's global indices."""
    return contribution(xp, dt, redop, rank, rank * layout.block, layout.block, nranks)


# Expected results: (values, sources) that `rank`'s result must hold, or (None, None) if it holds none.
# `sources` is the rank each block of the result came from (block = layout.block elements), or None for
# reductions, whose result mixes every rank.
def expect_reduced(xp: Any, dt: DType, redop: str, layout: Layout, rank: int, nranks: int, root: int) -> tuple:
    """Every rank holds the reduction of the whole buffer (allreduce)."""
    return reduced(xp, dt, redop, 0, layout.count, nranks), None


def expect_reduced_at_root(xp: Any, dt: DType, redop: str, layout: Layout, rank: int, nranks: int, root: int):
    """The root holds the reduction of the whole buffer; the other ranks hold nothing to check (reduce)."""
    if rank != root:
        return None, None
    return expect_reduced(xp, dt, redop, layout, rank, nranks, root)


def expect_reduced_block(xp: Any, dt: DType, redop: str, layout: Layout, rank: int, nranks: int, root: int):
    """Each rank holds the reduction of its own block (reducescatter)."""
    b = layout.block
    return reduced(xp, dt, redop, rank * b, b, nranks), None


def expect_gathered(xp: Any, dt: DType, redop: str, layout: Layout, rank: int, nranks: int, root: int) -> tuple:
    """Every rank holds each rank's own block, in rank order (allgather)."""
    b = layout.block
    parts = [contribution(xp, dt, redop, r, r * b, b, nranks) for r in range(nranks)]
    return xp.concatenate(parts), list(range(nranks))


def expect_exchanged(xp: Any, dt: DType, redop: str, layout: Layout, rank: int, nranks: int, root: int) -> tuple:
    """Each rank holds, from every rank, that rank's block for it (alltoall)."""
    b = layout.block
    parts = [contribution(xp, dt, redop, r, rank * b, b, nranks) for r in range(nranks)]
    return xp.concatenate(parts), list(range(nranks))


def expect_broadcast(xp: Any, dt: DType, redop: str, layout: Layout, rank: int, nranks: int, root: int) -> tuple:
    """Every rank holds the root's whole buffer (broadcast)."""
    return contribution(xp, dt, redop, root, 0, layout.count, nranks), [root]


def expect_from_left(xp: Any, dt: DType, redop: str, layout: Layout, rank: int, nranks: int, root: int) -> tuple:
    """Each rank holds its left neighbour's whole buffer (sendrecv around the ring)."""
    peer = (rank - 1) % nranks
    return contribution(xp, dt, redop, peer, 0, layout.count, nranks), [peer]


# --- the op table ------------------------------------------------------------------------------
# busbw factors: nccl-tests doc/PERFORMANCE.md (docs/methodology.md, "Metrics")
OPS = {
    "allreduce": Op("allreduce", _whole, send_whole, expect_reduced, busbw_top=2.0, reduction=True),
    "allgather": Op("allgather", _gather, send_own_block, expect_gathered, busbw_top=1.0),
    "reducescatter": Op("reducescatter", _scatter, send_whole, expect_reduced_block, busbw_top=1.0, reduction=True),
    "broadcast": Op("broadcast", _whole, send_whole, expect_broadcast, rooted=True),
    "reduce": Op("reduce", _whole, send_whole, expect_reduced_at_root, reduction=True, rooted=True),
    "alltoall": Op("alltoall", _alltoall, send_whole, expect_exchanged, busbw_top=1.0),
    "sendrecv": Op("sendrecv", _whole, send_whole, expect_from_left),
}


def op(name: str) -> Op:
    """Return the Op called `name`, or say which ops exist."""
    if name not in OPS:
        raise NcbenchError(f"unknown operation {name!r}; choose one of {', '.join(OPS)}")
    return OPS[name]
