"""cupy.cuda.runtime of the fake GPU: the queries ncbench makes."""

import os

from .. import _state


class CUDARuntimeError(RuntimeError):
    pass


def getDeviceCount():
    return _state.device_count()


def getDevice():
    return _state.current_device


def getDeviceProperties(device):
    if not 0 <= device < _state.device_count():
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
    sm = int(os.environ.get("FAKEGPU_SM", "90"))
    return {
        "name": b"FakeGPU (tests/fakegpu)",
        "totalGlobalMem": _state.memory_bytes(),
        "major": sm // 10,
        "minor": sm % 10,
    }


def driverGetVersion():
    return 12080


def runtimeGetVersion():
    return 12080


def memGetInfo():
    total = _state.memory_bytes()
    return max(0, total - _state.allocated_bytes()), total


def deviceSynchronize():
    _state.device_synchronized()


memcpyDeviceToDevice = 3


def memcpyAsync(dst, src, size, kind, stream):
    """Copy `size` bytes between two fake-device allocations, as work on `stream`."""
    import ctypes

    if not (_state.in_device_memory(dst, size) and _state.in_device_memory(src, size)):
        raise CUDARuntimeError("cudaErrorInvalidValue: memcpyAsync outside a device allocation")
    _state.work(stream, "memcpyAsync")
    ctypes.memmove(dst, src, size)
