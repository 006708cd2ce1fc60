"""Process state of the fake GPU: current device and stream, unsynchronised work, allocations, capture."""

import bisect
import os
import threading
import weakref


class StreamOrderError(RuntimeError):
    """Work on one stream is not ordered after unsynchronised work on another (a race on a GPU)."""


class CaptureError(RuntimeError):
    """An operation a capturing stream does not permit (cudaErrorStreamCaptureUnsupported)."""


def device_count() -> int:
    if os.environ.get("FAKEGPU_NO_DRIVER"):
        from .cuda.runtime import CUDARuntimeError

        raise CUDARuntimeError(
            "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version"
        )
    count = int(os.environ.get("FAKEGPU_DEVICES", "8"))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        shown = [v for v in visible.split(",") if v.strip() != ""]
        count = min(count, len(shown))
    return count


_local = threading.local()
current_device = 0
dirty: set[int] = set()  # stream pointers with unsynchronised work
capturing: dict[int, list] = {}  # stream pointer -> recorded callables
stuck: set[int] = set()  # streams whose NCCL kernel never completes (FAKEGPU_STUCK)
_allocations: dict[int, tuple[int, object]] = {}  # base pointer -> (bytes, weakref)
_bases: list[int] = []


def current_stream_ptr() -> int:
    return getattr(_local, "stream", 0)


def set_current_stream(ptr: int) -> None:
    _local.stream = ptr


def work(stream_ptr: int, what: str) -> None:
    """Account for `what` running on `stream_ptr` now; raise if it races with another stream."""
    if stream_ptr in capturing:
        raise CaptureError(f"{what} on stream {stream_ptr} while it is capturing a graph: it would be captured")
    others = sorted(p for p in dirty if p != stream_ptr)
    if others:
        raise StreamOrderError(
            f"{what} on stream {stream_ptr} is not ordered after unsynchronised work on stream(s) "
            f"{others}: synchronise, or issue both on one stream"
        )
    dirty.add(stream_ptr)


def synchronized(stream_ptr: int) -> None:
    while stream_ptr in stuck:  # cudaStreamSynchronize on a kernel that never ends: wait forever
        import time

        time.sleep(1)
    if stream_ptr in capturing:
        raise CaptureError("synchronising a capturing stream (cudaErrorStreamCaptureUnsupported)")
    dirty.discard(stream_ptr)


def device_synchronized() -> None:
    if capturing:
        raise CaptureError("cudaDeviceSynchronize while a stream is capturing (cudaErrorStreamCaptureUnsupported)")
    dirty.clear()


def host_read(what: str) -> None:
    """A device-to-host copy on the current stream: it runs there, then waits for that stream."""
    ptr = current_stream_ptr()
    work(ptr, what)
    synchronized(ptr)


def register(base: int, nbytes: int, owner) -> None:
    if nbytes == 0:
        return
    _allocations[base] = (nbytes, weakref.ref(owner))
    bisect.insort(_bases, base)
    weakref.finalize(owner, _forget, base)


def _forget(base: int) -> None:
    if _allocations.pop(base, None) is not None:
        i = bisect.bisect_left(_bases, base)
        if i < len(_bases) and _bases[i] == base:
            _bases.pop(i)


def in_device_memory(ptr: int, nbytes: int) -> bool:
    """Return True when [ptr, ptr + nbytes) lies inside one live fake-device allocation."""
    i = bisect.bisect_right(_bases, ptr) - 1
    if i < 0:
        return False
    base = _bases[i]
    size, ref = _allocations[base]
    return ref() is not None and ptr + nbytes <= base + size


def memory_bytes() -> int:
    return int(float(os.environ.get("FAKEGPU_MEMORY_GIB", "80")) * 2**30)


def allocated_bytes() -> int:
    return sum(size for size, ref in _allocations.values() if ref() is not None)
