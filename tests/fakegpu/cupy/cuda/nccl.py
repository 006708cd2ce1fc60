"""cupy.cuda.nccl of the fake GPU: NCCL's semantics on MPI, with CuPy 14's signatures.

Every call checks that its pointer ranges lie in live fake-device memory, then runs at once on the
stream (or is recorded while that stream captures a graph). Grouped send/recv are posted together
at groupEnd, so a ring exchange cannot deadlock, as in NCCL. Reductions follow NCCL's types:
bfloat16 and fp8 travel as their bits and are rounded to nearest even after every step, as on a GPU.
"""

import os
import secrets
import socket
import struct

import numpy as np

from .. import _state

NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG = range(5)
NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64 = range(6)
NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64, NCCL_BFLOAT16, NCCL_FLOAT8E4M3, NCCL_FLOAT8E5M2 = 6, 7, 8, 9, 10, 11
NCCL_CHAR, NCCL_INT, NCCL_HALF, NCCL_FLOAT, NCCL_DOUBLE = 0, 2, 6, 7, 8
_STORAGE = {
    0: np.int8,
    1: np.uint8,
    2: np.int32,
    3: np.uint32,
    4: np.int64,
    5: np.uint64,
    6: np.float16,
    7: np.float32,
    8: np.float64,
    9: np.uint16,
    10: np.uint8,
    11: np.uint8,
}
VERSION_CODE = 22703  # NCCL 2.27.3
UNIQUE_ID_BYTES = 128
_TAG = 31337
_ERRORS = {
    1: "unhandled cuda error",
    2: "unhandled system error",
    3: "internal error",
    4: "invalid argument",
    5: "invalid usage",
}

available = True


class NcclError(RuntimeError):
    def __init__(self, status: int, detail: str = ""):
        self.status = status
        super().__init__(f"NCCL_ERROR_{_ERRORS[status].upper().replace(' ', '_')}: {detail or _ERRORS[status]}")


def get_version():
    return VERSION_CODE


def get_build_version():
    return VERSION_CODE


def get_unique_id():
    """128 bytes (CuPy >= 14): the creator's world rank, then a nonce that names this communicator."""
    from mpi4py import MPI

    head = struct.pack("<qq", MPI.COMM_WORLD.rank, int.from_bytes(secrets.token_bytes(7), "little"))
    return head + bytes(UNIQUE_ID_BYTES - len(head))


_group: list = []
_depth = 0


def groupStart():
    global _depth
    _depth += 1


def groupEnd():
    global _depth
    if _depth == 0:
        raise NcclError(5, "groupEnd without groupStart")
    _depth -= 1
    if _depth == 0 and _group:
        calls, streams = list(_group), {s for s, _, _ in _group}
        _group.clear()
        if len(streams) != 1:
            raise NcclError(5, "fakegpu emulates groups on one stream only")
        _dispatch(streams.pop(), lambda: _run_group(calls))


def _run_group(calls) -> None:
    from mpi4py import MPI

    requests, later, to_self, from_self = [], [], [], []
    for _, kind, item in calls:
        if kind == "p2p" and item.self_send is not None:
            to_self.append(item.self_send)
        elif kind == "p2p" and item.self_recv is not None:
            from_self.append(item.self_recv)
        elif kind == "p2p":
            requests.append(item())
        else:
            later.append(item)
    if len(to_self) != len(from_self):
        raise NcclError(5, f"{len(to_self)} send(s) to self but {len(from_self)} receive(s) from self in one group")
    for src, dst in zip(to_self, from_self, strict=True):  # NCCL copies on the device; buffers may coincide
        if src.size != dst.size:
            raise NcclError(5, f"send to self of {src.size} B meets a receive of {dst.size} B")
        dst[...] = src.copy()
    for run in later:
        run()
    MPI.Request.Waitall(requests)


class _P2P:
    """One send or receive: posted at groupEnd (or at once); to self it is a copy, not an MPI message."""

    def __init__(self, post, self_send=None, self_recv=None):
        self.post, self.self_send, self.self_recv = post, self_send, self_recv

    def __call__(self):
        return self.post()


_calls = 0
_stuck_after = None  # NCCL calls after which this rank's kernels never complete (FAKEGPU_STUCK), read once


def _stuck_after_calls() -> float:
    global _stuck_after
    if _stuck_after is None:
        rank, _, after = os.environ.get("FAKEGPU_STUCK", "-1:").partition(":")
        _stuck_after = int(after or 0) if rank == str(_world_rank()) else float("inf")
    return _stuck_after


def _dispatch(stream: int, run) -> None:
    global _calls
    if stream in _state.capturing:
        _state.capturing[stream].append(run)
        return
    _state.work(stream, "NCCL kernel")
    _calls += 1
    if _calls > _stuck_after_calls():
        _state.stuck.add(stream)  # the kernel never completes; the peers wait for it inside theirs
        return
    run()


def _view(ptr: int, count: int, datatype: int, what: str) -> np.ndarray:
    import ctypes

    if datatype not in _STORAGE or str(datatype) == os.environ.get("FAKEGPU_REFUSE_TYPE"):
        raise NcclError(4, f"{what}: invalid data type {datatype}")
    nbytes = int(count) * np.dtype(_STORAGE[datatype]).itemsize
    if nbytes == 0:
        return np.empty(0, dtype=np.uint8)
    if not _state.in_device_memory(ptr, nbytes):
        raise NcclError(
            4,
            f"{what}: {nbytes} B at {ptr:#x} is not inside one device allocation (host memory, "
            f"freed memory, or an overrun)",
        )
    return np.frombuffer((ctypes.c_char * nbytes).from_address(ptr), dtype=np.uint8)


def _low_precision(datatype: int):
    """Return the ml_dtypes type of a float NCCL carries as bits (bfloat16, fp8), or None."""
    import ml_dtypes

    return {9: ml_dtypes.bfloat16, 10: ml_dtypes.float8_e4m3fn, 11: ml_dtypes.float8_e5m2}.get(datatype)


def _reduce(data: np.ndarray, datatype: int, op: int) -> np.ndarray:
    """Reduce ranks x bytes of contributions to one row of bytes, in NCCL's arithmetic."""
    with np.errstate(all="ignore"):  # timed loops reduce whatever the buffers hold; a GPU overflows silently
        return _reduce_rows(data, datatype, op)


def _reduce_rows(data: np.ndarray, datatype: int, op: int) -> np.ndarray:
    nranks = data.shape[0]
    rows = data.view(_STORAGE[datatype])
    low = _low_precision(datatype)
    if low is not None:  # computed in float32, stored back (rounded to nearest even) after every step
        rows = rows.view(low).astype(np.float32)
    if op == NCCL_AVG and rows.dtype.kind == "f":  # PreMulSum: each input times 1/n, then summed
        rows = rows * rows.dtype.type(1.0 / nranks)
    out = rows[0].copy()
    for row in rows[1:]:
        if op in (NCCL_SUM, NCCL_AVG):
            out = out + row
        elif op == NCCL_PROD:
            out = out * row
        elif op == NCCL_MAX:
            out = np.maximum(out, row)
        elif op == NCCL_MIN:
            out = np.minimum(out, row)
        else:
            raise NcclError(4, f"invalid reduction op {op}")
        if low is not None:
            out = out.astype(low).astype(np.float32)
    if op == NCCL_AVG and out.dtype.kind in "iu":  # SumPostDiv: integer division, C truncation
        out = (np.trunc(out.astype(np.float64) / nranks)).astype(out.dtype)
    if low is not None:
        out = out.astype(low)
    return np.ascontiguousarray(out).view(np.uint8)


class NcclCommunicator:
    def __init__(self, ndev: int, commId, rank: int):
        from mpi4py import MPI

        if not isinstance(commId, bytes) or len(commId) != UNIQUE_ID_BYTES:
            raise TypeError(f"commId must be the {UNIQUE_ID_BYTES} bytes get_unique_id returned (CuPy >= 14)")
        if not 0 <= rank < ndev:
            raise NcclError(4, f"rank {rank} is not in 0..{ndev - 1}")
        world = MPI.COMM_WORLD
        creator, nonce = struct.unpack_from("<qq", commId)
        me = (nonce, world.rank, rank, socket.gethostname(), _state.current_device)
        if world.rank == creator:
            members = [me] + [world.recv(source=MPI.ANY_SOURCE, tag=_TAG) for _ in range(ndev - 1)]
            problem = self._check(members, nonce, ndev)
            order = [m[1] for m in sorted(members, key=lambda m: m[2])]
            for m in members[1:]:
                world.send((problem, order), dest=m[1], tag=_TAG)
        else:
            world.send(me, dest=creator, tag=_TAG)
            problem, order = world.recv(source=creator, tag=_TAG)
        if problem:
            raise NcclError(5, problem)
        self._mpi = world.Create_group(world.Get_group().Incl(order), tag=_TAG)
        self._rank, self._size, self._device = rank, ndev, _state.current_device
        dump = os.environ.get("NCCL_TOPO_DUMP_FILE")
        if dump and rank == int(os.environ.get("NCCL_TOPO_DUMP_FILE_RANK", "0")):  # as NCCL's topology search does
            with open(dump, "w") as f:
                f.write(
                    f'<system version="1">\n  <cpu numaid="0" arch="x86_64">\n    <pci busid="0000:18:00.0">\n'
                    f'      <gpu dev="{self._device}" sm="90" rank="{rank}"/>\n    </pci>\n'
                    f'    <nic><net name="fakegpu_0" dev="0" speed="400000"/></nic>\n  </cpu>\n</system>\n'
                )
        self._aborted = False

    @staticmethod
    def _check(members, nonce, ndev) -> str:
        if any(m[0] != nonce for m in members):
            return "ranks joined with different unique ids"
        if sorted(m[2] for m in members) != list(range(ndev)):
            return f"ranks {sorted(m[2] for m in members)} do not make 0..{ndev - 1}"
        seen = {}
        for m in members:
            key = (m[3], m[4])
            if key in seen:
                return f"Duplicate GPU detected: rank {m[2]} and rank {seen[key]} both on CUDA device {m[4]} of {m[3]}"
            seen[key] = m[2]
        return ""

    # -- what CuPy's communicator offers --------------------------------------------------------
    def rank_id(self):
        return self._rank

    def size(self):
        return self._size

    def device_id(self):
        return self._device

    def check_async_error(self):
        if self._aborted:
            raise NcclError(4, "communicator was aborted")
        if _state.stuck:
            raise NcclError(2, "NCCL network error: connection closed by remote peer (fakegpu: kernel stuck)")
        if os.environ.get("FAKEGPU_ASYNC_ERROR") == str(_world_rank()):
            raise NcclError(2, "remote process exited or there was a network error (fakegpu injected)")

    def abort(self):
        self._aborted = True

    def destroy(self):
        if self._mpi is not None:
            self._mpi.Free()
            self._mpi = None

    def _live(self):
        if self._aborted or self._mpi is None:
            raise NcclError(4, "communicator was aborted or destroyed")
        return self._mpi

    def _submit(self, stream: int, run, kind: str = "coll") -> None:
        if _depth > 0:
            _group.append((stream, kind, run))
        elif kind == "p2p":
            if run.self_send is not None or run.self_recv is not None:
                raise NcclError(5, "send/recv to self outside a group would wait for itself (deadlock)")
            _dispatch(stream, lambda: run().Wait())
        else:
            _dispatch(stream, run)

    def _gathered(self, view: np.ndarray) -> np.ndarray:
        out = np.empty((self._size, view.size), dtype=np.uint8)
        self._live().Allgather(view.copy(), out)
        return out

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        s = _view(sendbuf, count, datatype, "allReduce sendbuff")
        r = _view(recvbuf, count, datatype, "allReduce recvbuff")

        def run():
            r[...] = _reduce(self._gathered(s), datatype, op)

        self._submit(stream, run)

    def reduce(self, sendbuf, recvbuf, count, datatype, op, root, stream):
        s = _view(sendbuf, count, datatype, "reduce sendbuff")
        r = _view(recvbuf, count, datatype, "reduce recvbuff") if self._rank == root else None
        self._check_root(root)

        def run():
            gathered = self._gathered(s)
            if r is not None:
                r[...] = _reduce(gathered, datatype, op)

        self._submit(stream, run)

    def broadcast(self, sendbuff, recvbuff, count, datatype, root, stream):
        self._check_root(root)
        s = _view(sendbuff, count, datatype, "broadcast sendbuff") if self._rank == root else None
        r = _view(recvbuff, count, datatype, "broadcast recvbuff")

        def run():
            if s is not None:
                r[...] = s.copy()
            self._live().Bcast(r, root=root)

        self._submit(stream, run)

    def bcast(self, buff, count, datatype, root, stream):
        self.broadcast(buff, buff, count, datatype, root, stream)

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):
        s = _view(sendbuf, recvcount * self._size, datatype, "reduceScatter sendbuff")
        r = _view(recvbuf, recvcount, datatype, "reduceScatter recvbuff")

        def run():
            whole = _reduce(self._gathered(s), datatype, op)
            r[...] = whole[self._rank * r.size : (self._rank + 1) * r.size]

        self._submit(stream, run)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):
        s = _view(sendbuf, count, datatype, "allGather sendbuff")
        r = _view(recvbuf, count * self._size, datatype, "allGather recvbuff")

        def run():
            self._live().Allgather(s.copy(), r)

        self._submit(stream, run)

    def send(self, sendbuf, count, datatype, peer, stream):
        self._check_peer(peer)
        s = _view(sendbuf, count, datatype, "send sendbuff")
        mine = s if peer == self._rank else None
        self._submit(stream, _P2P(lambda: self._live().Isend(s, dest=peer, tag=1), self_send=mine), "p2p")

    def recv(self, recvbuf, count, datatype, peer, stream):
        self._check_peer(peer)
        r = _view(recvbuf, count, datatype, "recv recvbuff")
        mine = r if peer == self._rank else None
        self._submit(stream, _P2P(lambda: self._live().Irecv(r, source=peer, tag=1), self_recv=mine), "p2p")

    def _check_root(self, root):
        if not 0 <= root < self._size:
            raise NcclError(4, f"root {root} is not a rank of this communicator of {self._size}")

    def _check_peer(self, peer):
        if not 0 <= peer < self._size:
            raise NcclError(4, f"peer {peer} is not a rank of this communicator of {self._size}")


def _world_rank() -> int:
    from mpi4py import MPI

    return MPI.COMM_WORLD.rank
