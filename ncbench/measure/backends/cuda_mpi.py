"""GPU buffers handed to MPI: CUDA-aware MPI, or --staged copies through host memory, never silently.

CuPy arrays -> the MPI backend's calls, on device pointers when the library says it is CUDA-aware;
with --staged each operation copies device -> host, runs on host buffers, and copies back (timed).
"""

import numpy as np

from ...ops import DType, Layout
from . import gpu
from .mpi import MPIBackend, host_buffer


class CudaMPIBackend(MPIBackend):
    name = "cuda-mpi"

    @classmethod
    def unavailable(
        cls, *, staged: bool = False, assume_cuda_aware: bool = False, can_stage: bool = True, **options
    ) -> str | None:
        """`can_stage`: the command offers --staged (collectives do; p2p, which times the link, does not)."""
        reason = gpu.unavailable()
        if reason or staged or assume_cuda_aware:
            return reason
        aware, how = gpu.cuda_aware_mpi()
        if aware:
            return None
        verdict = "is not CUDA-aware" if aware is False else "cannot say whether it is CUDA-aware"
        stage = "add --staged to copy through host memory (every row is labelled staged), " if can_stage else ""
        return f"this MPI library {verdict} ({how}); {stage}add --assume-cuda-aware if you know better, or use --backend nccl"

    @classmethod
    def memory_problem(
        cls, bytes_per_rank: int, hosts: list[str], rank: int, *, staged: bool = False, **options
    ) -> str | None:
        on_device = gpu.device_memory_problem(bytes_per_rank, hosts, rank)
        return on_device or (super().memory_problem(bytes_per_rank, hosts, rank) if staged else None)

    def __init__(self, comm, *, hosts, staged: bool = False, **options):
        import cupy

        super().__init__(comm)
        local, local_size = gpu.local_rank(hosts, comm.rank)
        cupy.cuda.Device(gpu.select_device(local, local_size, cupy.cuda.runtime.getDeviceCount())).use()
        self.cupy, self.xp, self.staged = cupy, cupy, staged
        self.timing = "host, staged through host memory" if staged else "host, CUDA-aware MPI"
        self.allocation = "CuPy device memory" + (" + 2 MiB-aligned host staging buffers" if staged else "")

    def alloc(self, nelems: int, dt: DType):
        return self.cupy.zeros(nelems, dtype=dt.numpy)

    def sync(self) -> None:
        """MPI knows nothing of CUDA streams: wait until every kernel that wrote a buffer is done."""
        self.cupy.cuda.Device().synchronize()

    def message(self, array, count: int) -> list:
        from mpi4py import MPI

        if isinstance(array, np.ndarray):
            return super().message(array, count)
        return [array, count, MPI.Datatype.fromcode(array.dtype.char)]  # mpi4py reads __cuda_array_interface__

    def describe_device(self) -> tuple[int, str, str]:
        return gpu.describe_device()

    def versions(self) -> dict:
        return {"cuda_aware_mpi": "{} ({})".format(*gpu.cuda_aware_mpi()), **gpu.gpu_metadata()}

    def prepare(self, name: str, layout: Layout, send, recv, *, dt: DType, redop: str, root: int, in_place: bool):
        if not self.staged:
            self.sync()  # inputs written by kernels must be complete before MPI reads device memory
            return super().prepare(name, layout, send, recv, dt=dt, redop=redop, root=root, in_place=in_place)
        held = max(layout.recv_count, layout.send_count) if in_place else layout.recv_count  # in place: input in recv
        dev_in = recv[:held] if in_place else send[: layout.send_count]
        dev_out = recv[:held]
        host_send = host_buffer(max(1, layout.send_count) * send.itemsize).view(send.dtype)[: layout.send_count]
        host_recv = host_buffer(max(1, held) * recv.itemsize).view(recv.dtype)[:held]
        host_in = host_recv if in_place else host_send
        host_call, host_result = super().prepare(
            name, layout, host_send, host_recv, dt=dt, redop=redop, root=root, in_place=in_place
        )

        def staged():  # the copies are part of what a staged operation costs, so they are timed
            dev_in.get(out=host_in)
            host_call()
            dev_out.set(host_recv)

        result = None if host_result is None else recv[: len(host_result)]
        return staged, result
