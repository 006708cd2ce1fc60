"""cupy.cuda of the fake GPU: devices, streams, events and graphs with CUDA's ordering rules."""

import itertools
import time

from .. import _state
from . import runtime

_next_stream = itertools.count(0x5000)


class Device:
    def __init__(self, device=None):
        self.id = _state.current_device if device is None else int(device)

    def use(self):
        if not 0 <= self.id < _state.device_count():
            raise runtime.CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
        _state.current_device = self.id

    def synchronize(self):
        _state.device_synchronized()

    @property
    def pci_bus_id(self):
        return f"0000:{0x18 + 0x10 * self.id:02X}:00.0"

    def __enter__(self):
        self._previous = _state.current_device
        self.use()
        return self

    def __exit__(self, *args):
        _state.current_device = self._previous


class Graph:
    """A captured sequence of NCCL calls; launching replays them as work on the given stream."""

    def __init__(self, calls):
        self._calls = calls

    def launch(self, stream=None):
        ptr = _state.current_stream_ptr() if stream is None else stream.ptr
        for call in self._calls:
            _state.work(ptr, "graph launch")
            call()

    def upload(self, stream=None):
        pass


class Stream:
    def __init__(self, null=False, non_blocking=False, ptds=False, priority=0):
        self.ptr = 0 if null else next(_next_stream)
        self.device_id = -1 if null else _state.current_device
        self.non_blocking = non_blocking

    def __eq__(self, other):
        return isinstance(other, Stream) and other.ptr == self.ptr

    def __hash__(self):
        return self.ptr

    def use(self):
        _state.set_current_stream(self.ptr)
        return self

    def __enter__(self):
        self._previous = _state.current_stream_ptr()
        _state.set_current_stream(self.ptr)
        return self

    def __exit__(self, *args):
        _state.set_current_stream(self._previous)

    def synchronize(self):
        _state.synchronized(self.ptr)

    @property
    def done(self):
        """cudaStreamQuery: True once the stream's work is complete (which also orders it, as a sync does)."""
        if self.ptr in _state.stuck:
            return False
        _state.synchronized(self.ptr)
        return True

    def begin_capture(self, mode=None):
        if self.ptr == 0:
            raise RuntimeError("cannot capture on the default (legacy) stream")
        if self.ptr in _state.capturing:
            raise _state.CaptureError("the stream is already capturing")
        _state.synchronized(self.ptr)  # a fresh capture sees no pending work in this model
        _state.capturing[self.ptr] = []

    def end_capture(self):
        return Graph(_state.capturing.pop(self.ptr))

    def is_capturing(self):
        return self.ptr in _state.capturing

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event


Stream.null = Stream(null=True)


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.disable_timing = disable_timing
        self._time = None
        self._stream = None

    def record(self, stream=None):
        ptr = _state.current_stream_ptr() if stream is None else stream.ptr
        if ptr in _state.capturing:
            raise _state.CaptureError("recording a timing event into a graph capture is not emulated")
        self._stream = ptr
        self._time = time.perf_counter()  # work runs at once here, so host time is device time

    def synchronize(self):
        if self._stream is not None:
            _state.synchronized(self._stream)


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two recorded events (cudaEventElapsedTime)."""
    if start_event._time is None or end_event._time is None:
        raise runtime.CUDARuntimeError("cudaErrorInvalidResourceHandle: event not recorded")
    if start_event.disable_timing or end_event.disable_timing:
        raise runtime.CUDARuntimeError("cudaErrorInvalidResourceHandle: timing disabled")
    if end_event._stream in _state.dirty:
        raise runtime.CUDARuntimeError("cudaErrorNotReady: the end event has not completed (synchronise first)")
    return (end_event._time - start_event._time) * 1e3


def get_current_stream(device_id=-1):
    ptr = _state.current_stream_ptr()
    stream = Stream(null=True)
    stream.ptr = ptr
    return stream
