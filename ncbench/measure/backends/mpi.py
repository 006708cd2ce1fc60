"""Host buffers through MPI (mpi4py + numpy): the backend that runs anywhere.

(op name, Layout, buffers, redop, root, placement) -> a zero-argument callable issuing one operation.
"""

import mmap
from functools import partial

import numpy as np

from ...errors import NcbenchError
from ...ops import NOT_IN_NUMPY, DType, Layout
from .base import Backend

HUGE_PAGE = 2 << 20
# docs/methodology.md, "Memory": numpy's unaligned large arrays ran allreduce 1.9-2.8x slower than 2 MiB-aligned
# ones, and THP in madvise mode (the common default) only applies to memory that asks for it.
ALLOCATION = "mmap, 2 MiB-aligned, MADV_HUGEPAGE from 2 MiB, first-touched"


def host_buffer(nbytes: int) -> np.ndarray:
    """Return `nbytes` of zeroed, 2 MiB-aligned host memory that asks for huge pages."""
    # private, not mmap's default MAP_SHARED: shared anonymous memory is shmem, where THP follows
    # shmem_enabled (usually "never") and MADV_HUGEPAGE silently does nothing
    mapping = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if nbytes >= HUGE_PAGE and hasattr(mapping, "madvise") and hasattr(mmap, "MADV_HUGEPAGE"):
        mapping.madvise(mmap.MADV_HUGEPAGE)
    raw = np.frombuffer(mapping, dtype=np.uint8)  # the array keeps the mapping alive
    offset = (-raw.ctypes.data) % HUGE_PAGE
    buffer = raw[offset : offset + nbytes]
    buffer[:] = 0  # first touch, so page faults stay out of the timed loop
    return buffer


class MPIBackend(Backend):
    name = "mpi"
    xp = np
    timing = "host"  # MPI_Wtime around back-to-back calls; MPI calls on host memory are synchronous
    allocation = ALLOCATION

    def __init__(self, comm, **options):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm
        self.ops = {"sum": MPI.SUM, "prod": MPI.PROD, "max": MPI.MAX, "min": MPI.MIN, "avg": MPI.SUM}

    @staticmethod
    def unsupported(dt: DType) -> str | None:
        """Return why this backend cannot carry `dt`, or None if it can."""
        if dt.numpy in NOT_IN_NUMPY:
            return (
                f"datatype {dt.name} has no MPI datatype in this MPI library; use half (float16) "
                "on --backend mpi, or --backend nccl on GPUs"
            )
        return None

    def alloc(self, nelems: int, dt: DType) -> np.ndarray:
        """Return a zeroed, aligned host array of `nelems` elements of `dt`."""
        return host_buffer(nelems * dt.size).view(np.dtype(dt.numpy))

    def sync(self) -> None:
        """Host MPI calls return when the operation is done: nothing to wait for."""

    def message(self, array: np.ndarray, count: int) -> list:
        """Return an mpi4py message [buffer, count, datatype] that is cheap to pass on every call.

        mpi4py parses an ndarray argument on every call (1.05 us per 8 B allreduce here); its own
        buffer object with an explicit datatype costs 0.42 us for the same MPI call.
        """
        return [self.MPI.buffer(array), count, self.MPI.Datatype.fromcode(array.dtype.char)]

    def prepare(self, name: str, layout: Layout, send, recv, *, dt: DType, redop: str, root: int, in_place: bool):
        """Return (call, result): a callable issuing one `name` op, and the view holding its result."""
        comm, rank, nranks = self.comm, self.comm.rank, self.comm.size
        IN_PLACE, op, m = self.MPI.IN_PLACE, self.ops[redop], self.message
        # explicit counts are mpi4py's: per rank for allgather/reduce_scatter_block, per peer for alltoall
        per = layout.block if name in ("allgather", "reducescatter", "alltoall") else layout.count
        s, d = m(send[: layout.send_count], per), m(recv[: layout.recv_count], per)
        src = IN_PLACE if in_place else s
        result = recv[: layout.recv_count]
        if name == "allreduce":
            call = partial(comm.Allreduce, src, d, op)
        elif name == "allgather":
            call = partial(comm.Allgather, src, d)
        elif name == "reducescatter":
            if in_place:  # MPI's in-place reduce_scatter reads all of recv and leaves the result at its start
                call = partial(comm.Reduce_scatter_block, IN_PLACE, m(recv[: layout.send_count], per), op)
                result = recv[: layout.block]
            else:
                call = partial(comm.Reduce_scatter_block, s, d, op)
        elif name == "broadcast":
            sends_from_send = rank == root and not in_place
            call = partial(comm.Bcast, s if sends_from_send else d, root)
            result = None if sends_from_send else result  # MPI's root keeps its data where it was
        elif name == "reduce":
            if in_place:
                call = partial(comm.Reduce, IN_PLACE if rank == root else d, d if rank == root else None, op, root)
            else:
                call = partial(comm.Reduce, s, d, op, root)
            result = result if rank == root else None
        elif name == "alltoall":
            call = partial(comm.Alltoall, src, d)
        elif name == "sendrecv":
            dest, source = (rank + 1) % nranks, (rank - 1) % nranks
            if in_place:
                call = partial(comm.Sendrecv_replace, d, dest, 0, source, 0)
            else:
                call = partial(comm.Sendrecv, s, dest, 0, d, source, 0)
        else:
            raise NcbenchError(f"backend mpi has no operation {name!r}")
        if redop == "avg" and result is not None:
            call = _then_divide(call, result, nranks)
        return call, result


def _then_divide(call, out: np.ndarray, nranks: int):
    """MPI has no average: sum, then divide on this rank (part of what an MPI average costs)."""
    divide = np.floor_divide if out.dtype.kind in "iu" else np.true_divide

    def average():
        call()
        divide(out, nranks, out=out)

    return average
