"""GPU buffers through NCCL (CuPy's raw-pointer API), bootstrapped over MPI.

MPI communicator -> one GPU per rank (from the node-local rank), an NCCL communicator built from a
unique id broadcast over MPI (its creation timed), then ops enqueued on a non-blocking stream.
Calls follow CuPy's cupy.cuda.nccl API (cupy_backends/cuda/libs/nccl.pyx); counts are elements, pointers raw ints.
"""

import os
import tempfile
import time
from functools import partial
from pathlib import Path

from ...errors import EXIT_UNKNOWN, NcbenchError
from ...ops import DType, Layout
from . import gpu
from .base import Backend

NCCL_OPS = {"sum": 0, "prod": 1, "max": 2, "min": 3, "avg": 4}  # ncclRedOp_t
# ncclDataType_t by ncbench's dtype name (storage cannot tell: fp8 and uint8 both live in uint8)
NCCL_TYPES = {
    "int8": 0,
    "uint8": 1,
    "int32": 2,
    "uint32": 3,
    "int64": 4,
    "uint64": 5,
    "half": 6,
    "float": 7,
    "double": 8,
    "bfloat16": 9,
    "f8e4m3": 10,
    "f8e5m2": 11,
}
FP8 = ("f8e4m3", "f8e5m2")
FP8_NCCL, FP8_SM = 22400, 9  # ncclFloat8e4m3/e5m2 arrived in NCCL 2.24 and need sm_90 (nccl-tests drops them below)


class NCCLBackend(Backend):
    name = "nccl"
    allocation = "CuPy device memory (cudaMalloc through CuPy's pool)"

    @classmethod
    def unavailable(cls, **options) -> str | None:
        return gpu.unavailable()

    @staticmethod
    def unsupported(dt: DType) -> str | None:
        """fp8 needs NCCL >= 2.24 and a GPU of compute capability 9.0 or newer (nccl-tests' rule)."""
        if dt.name not in FP8:
            return None
        import cupy
        from cupy.cuda import nccl

        major = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["major"]
        if nccl.get_version() < FP8_NCCL or major < FP8_SM:
            return (
                f"datatype {dt.name} needs NCCL 2.24 or newer and a GPU of compute capability {FP8_SM}.0 or newer; "
                f"this is NCCL {nccl.get_version()} on compute capability {major}.x"
            )
        return None

    @classmethod
    def memory_problem(cls, bytes_per_rank: int, hosts: list[str], rank: int, **options) -> str | None:
        return gpu.device_memory_problem(bytes_per_rank, hosts, rank)

    def __init__(self, comm, *, hosts, graph_launches: int = 0, **options):
        import cupy
        from cupy.cuda import nccl

        self.cupy, self.nccl, self.comm, self.graph_launches = cupy, nccl, comm, graph_launches
        local, local_size = gpu.local_rank(hosts, comm.rank)
        self.device = gpu.select_device(local, local_size, cupy.cuda.runtime.getDeviceCount())
        cupy.cuda.Device(self.device).use()  # before the communicator and before any allocation
        self.stream = cupy.cuda.Stream(non_blocking=True)  # no implicit sync with the legacy stream ...
        self.stream.use()  # ... so CuPy's own kernels (zeroing, check data) must run on it too, in order
        self.xp = cupy
        self.timing = "graph" if graph_launches else "host+events"
        self.topology_xml, dump = None, None
        if comm.rank == 0 and "NCCL_TOPO_DUMP_FILE" not in os.environ:  # NCCL's own view of GPUs, NICs, links
            dump = Path(tempfile.mkdtemp(prefix="ncbench-nccl-")) / "topology.xml"
            os.environ["NCCL_TOPO_DUMP_FILE"] = str(dump)  # written by NCCL's rank 0 while the communicator forms
        uid = nccl.get_unique_id() if comm.rank == 0 else None  # bytes from CuPy 14, a tuple before
        uid = comm.bcast(uid, root=0)
        comm.Barrier()  # time the creation itself, not the wait for the slowest rank to get here
        t0 = time.perf_counter()
        self.nccl_comm = nccl.NcclCommunicator(comm.size, uid, comm.rank)
        self.init_s = time.perf_counter() - t0
        if dump is not None:
            del os.environ["NCCL_TOPO_DUMP_FILE"]
            self.topology_xml = _read_and_remove(dump)

    def alloc(self, nelems: int, dt: DType):
        return self.cupy.zeros(nelems, dtype=gpu.storage_dtype(dt))

    def sync(self) -> None:
        """Wait for the stream as nccl-tests' testStreamSynchronize does: poll it, and NCCL's async error.

        A blocking cudaStreamSynchronize would sit inside a failed collective until the watchdog fired;
        polling surfaces a NCCL error (a peer gone, a network failure) at once, as exit 3.
        """
        stream, check = self.stream, self._check_async_error
        while not stream.done:  # cudaStreamQuery
            check()
        check()

    def failure(self, err: Exception) -> str | None:
        """NCCL refusing a call at enqueue (an unsupported type or op, a bad argument) is NcclError."""
        return f"NCCL refused the call ({err})" if type(err).__name__ == "NcclError" else None

    def _check_async_error(self) -> None:
        try:
            self.nccl_comm.check_async_error()
        except Exception as err:  # noqa: BLE001 - cupy_backends NcclError, not importable without CUDA
            raise NcbenchError(f"NCCL reported an error on rank {self.comm.rank}: {err}", EXIT_UNKNOWN) from None

    def timer(self):
        return gpu.DeviceTimer(self.stream)

    def captured(self, iters: int) -> int:
        """Return the operations captured in one graph: a sample of `iters` spread over the launches."""
        return max(1, iters // self.graph_launches)

    def ops_per_batch(self, iters: int) -> int:
        return self.captured(iters) * self.graph_launches if self.graph_launches else iters

    def batch(self, raw, pre, iters: int):
        if not self.graph_launches:
            return super().batch(raw, pre, iters)
        launch = gpu.captured_batch(self.stream, raw, self.captured(iters))
        launches = range(self.graph_launches)

        def run():
            for _ in launches:
                if pre is not None:  # host hooks cannot be captured: once per launch
                    pre()
                launch()

        return run

    def value_dtype(self, dt: DType) -> DType:
        return gpu.value_dtype(dt)

    def encode(self, values, dt: DType):
        return gpu.encode(self.cupy, values, dt)

    def decode(self, stored, dt: DType):
        return gpu.decode(self.cupy, stored, dt)

    def describe_device(self) -> tuple[int, str, str]:
        return gpu.describe_device()

    def versions(self) -> dict:
        found = {
            "nccl": str(self.nccl.get_version()),
            "nccl_build": str(self.nccl.get_build_version()),
            "nccl_topology_xml": self.topology_xml,
        }
        return {**found, **gpu.gpu_metadata()}

    def prepare(self, name: str, layout: Layout, send, recv, *, dt: DType, redop: str, root: int, in_place: bool):
        """Return (call, result): a callable enqueueing one `name` op, and the view holding its result."""
        nc, st, rank, nranks = self.nccl_comm, self.stream.ptr, self.comm.rank, self.comm.size
        kind, op = NCCL_TYPES[dt.name], NCCL_OPS[redop]
        size = recv.itemsize
        rp = recv.data.ptr
        sp = rp if in_place else send.data.ptr
        c, b = layout.count, layout.block
        result = recv[: layout.recv_count]
        if name == "allreduce":
            call = partial(nc.allReduce, sp, rp, c, kind, op, st)
        elif name == "allgather":  # in place: this rank's block already sits at its offset in recv
            call = partial(nc.allGather, rp + rank * b * size if in_place else sp, rp, b, kind, st)
        elif name == "reducescatter":  # in place: the result lands at this rank's block of recv
            out = rp + rank * b * size if in_place else rp
            call = partial(nc.reduceScatter, sp, out, b, kind, op, st)
            result = recv[rank * b : (rank + 1) * b] if in_place else recv[:b]
        elif name == "broadcast":
            call = partial(nc.broadcast, sp, rp, c, kind, root, st)
        elif name == "reduce":
            call = partial(nc.reduce, sp, rp, c, kind, op, root, st)
            result = result if rank == root else None
        elif name == "alltoall":
            peers = [(p, sp + p * b * size, rp + p * b * size) for p in range(nranks)]
            call = self._grouped(
                [(nc.send, s, b, kind, p, st) for p, s, _ in peers]
                + [(nc.recv, r, b, kind, p, st) for p, _, r in peers]
            )
            result = None if in_place else result  # in place overwrites what it still sends (nccl-tests: N/A)
        elif name == "sendrecv":
            right, left = (rank + 1) % nranks, (rank - 1) % nranks
            call = self._grouped([(nc.send, sp, c, kind, right, st), (nc.recv, rp, c, kind, left, st)])
            result = None if in_place else result
        else:
            raise NcbenchError(f"backend nccl has no operation {name!r}")
        return call, result

    def p2p(self, sends=(), recvs=()):
        """Return a callable issuing these (buffer, bytes, peer) sends and receives as one NCCL group.

        Peers are ranks of this backend's communicator; a peer may be this rank itself (NCCL allows it).
        """
        nc, st, byte = self.nccl_comm, self.stream.ptr, NCCL_TYPES["uint8"]
        return self._grouped(
            [(nc.send, buf.data.ptr, n, byte, peer, st) for buf, n, peer in sends]
            + [(nc.recv, buf.data.ptr, n, byte, peer, st) for buf, n, peer in recvs]
        )

    def _grouped(self, calls):
        """Return one callable issuing these send/recv calls inside ncclGroupStart/End (no deadlock)."""
        start, end = self.nccl.groupStart, self.nccl.groupEnd

        def grouped():
            start()
            for fn, *args in calls:
                fn(*args)
            end()

        return grouped

    def abort(self) -> None:
        self.nccl_comm.abort()  # ncclCommAbort: frees peers blocked on this rank's kernels

    def close(self) -> None:
        self.stream.synchronize()
        self.nccl_comm.destroy()


TOPOLOGY_MAX_BYTES = 1 << 20  # a node's topology is kilobytes; never let a runaway file bloat the sidecar


def _read_and_remove(path: Path) -> str | None:
    """Return NCCL's topology dump (or None if NCCL wrote none) and remove it and its folder."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(TOPOLOGY_MAX_BYTES)
    except OSError:
        return None
    finally:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
