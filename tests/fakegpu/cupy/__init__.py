"""A strict CPU stand-in for the part of CuPy that ncbench uses (see ../README.md). Tests only.

Arrays are NumPy arrays of a subclass that plays "device memory": every kernel-like operation is
accounted to the current stream, host reads synchronise it, and mixing with NumPy arrays raises.
"""

import numpy as _np

from . import _state
from ._state import CaptureError, StreamOrderError  # noqa: F401 - part of the fake's surface

__version__ = "14.0.0+fakegpu"

dtype = _np.dtype
float16, float32, float64 = _np.float16, _np.float32, _np.float64
int8, int16, int32, int64 = _np.int8, _np.int16, _np.int32, _np.int64
uint8, uint16, uint32, uint64 = _np.uint8, _np.uint16, _np.uint32, _np.uint64
bool_ = _np.bool_


class _Pointer:
    __slots__ = ("ptr",)

    def __init__(self, ptr: int):
        self.ptr = ptr


def _plain(x):
    if isinstance(x, ndarray):
        return x.view(_np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    return x


def _refuse_host(args, what: str) -> None:
    for x in args:
        if isinstance(x, (list, tuple)):
            _refuse_host(x, what)
        elif isinstance(x, _np.ndarray) and not isinstance(x, ndarray) and x.ndim > 0:
            raise TypeError(f"Unsupported type {type(x)} in {what}: a NumPy array cannot meet a device array (CuPy)")


def _device(result):
    """Wrap a NumPy result as device memory (registered, so NCCL accepts its pointer)."""
    if isinstance(result, tuple):
        return tuple(_device(r) for r in result)
    if isinstance(result, _np.ndarray):
        out = result.view(ndarray)
        if result.base is None:
            _state.register(result.ctypes.data, result.nbytes, result)
        return out
    if isinstance(result, _np.generic):  # CuPy reductions return 0-d device arrays, not scalars
        return _device(_np.asarray(result).copy())
    return result


class ndarray(_np.ndarray):
    """Device memory: NumPy storage, CuPy's rules."""

    @property
    def data(self):
        return _Pointer(self.ctypes.data)

    @property
    def device(self):
        from .cuda import Device

        return Device(_state.current_device)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host(inputs, ufunc.__name__)
        _state.work(_state.current_stream_ptr(), f"{ufunc.__name__} kernel")
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        return _device(getattr(ufunc, method)(*_plain(inputs), **kwargs))

    def __array_function__(self, func, types, args, kwargs):
        _refuse_host(args, func.__name__)
        _state.work(_state.current_stream_ptr(), f"{func.__name__} kernel")
        return _device(func(*_plain(args), **_plain(kwargs)))

    def __getitem__(self, key):
        got = _np.ndarray.__getitem__(self, key)
        if isinstance(got, _np.generic):  # CuPy indexes to a 0-d device array, never a host scalar
            return _np.asarray(got).copy().view(ndarray)
        return got

    def __setitem__(self, key, value):
        _state.work(_state.current_stream_ptr(), "copy kernel")
        _np.ndarray.__setitem__(self.view(_np.ndarray), key, _plain(value))

    def astype(self, dtype, *args, **kwargs):
        _state.work(_state.current_stream_ptr(), "astype kernel")
        return _device(self.view(_np.ndarray).astype(dtype, *args, **kwargs))

    def copy(self, order="C"):
        _state.work(_state.current_stream_ptr(), "copy kernel")
        return _device(self.view(_np.ndarray).copy(order=order))

    def get(self, stream=None, order="C", out=None, blocking=True):
        _state.host_read("device-to-host copy")
        if out is None:
            return self.view(_np.ndarray).copy(order=order)
        if isinstance(out, ndarray) or out.shape != self.shape or out.dtype != self.dtype:
            raise ValueError("out must be a NumPy array of the same shape and dtype")
        out[...] = self.view(_np.ndarray)
        return out

    def set(self, arr, stream=None):
        if isinstance(arr, ndarray) or not isinstance(arr, _np.ndarray):
            raise TypeError("set() takes a NumPy array")
        if arr.shape != self.shape or arr.dtype != self.dtype:
            raise ValueError(f"set(): shape/dtype {arr.shape} {arr.dtype} != {self.shape} {self.dtype}")
        _state.work(_state.current_stream_ptr(), "host-to-device copy")
        self.view(_np.ndarray)[...] = arr

    def item(self, *args):
        _state.host_read("item()")
        return self.view(_np.ndarray).item(*args)

    def tolist(self):
        _state.host_read("tolist()")
        return self.view(_np.ndarray).tolist()

    def __int__(self):
        return int(self.item())

    def __float__(self):
        return float(self.item())

    def __bool__(self):
        return bool(self.item())

    def __index__(self):
        return int(self.item())

    def __reduce__(self):
        raise TypeError("device arrays are not pickled by ncbench; call .get() first")


def _create(result):
    _state.work(_state.current_stream_ptr(), "allocation kernel")
    return _device(result)


def empty(shape, dtype=float, order="C"):
    return _device(_np.empty(shape, dtype=dtype, order=order))  # no kernel


def zeros(shape, dtype=float, order="C"):
    return _create(_np.zeros(shape, dtype=dtype, order=order))


def ones(shape, dtype=float):
    return _create(_np.ones(shape, dtype=dtype))


def full(shape, fill_value, dtype=None):
    return _create(_np.full(shape, fill_value, dtype=dtype))


def arange(*args, dtype=None):
    return _create(_np.arange(*args, dtype=dtype))


def asarray(a, dtype=None):
    if isinstance(a, ndarray):
        return a if dtype is None else a.astype(dtype)
    return _create(_np.array(a, dtype=dtype))


array = asarray


def asnumpy(a, stream=None):
    return a.get() if isinstance(a, ndarray) else _np.asarray(a)


def _dispatch(name):
    def call(*args, **kwargs):
        _refuse_host(args, name)
        _state.work(_state.current_stream_ptr(), f"{name} kernel")
        return _device(getattr(_np, name)(*_plain(args), **_plain(kwargs)))

    call.__name__ = name
    return call


for _name in (
    "where",
    "concatenate",
    "zeros_like",
    "empty_like",
    "ones_like",
    "abs",
    "absolute",
    "maximum",
    "minimum",
    "stack",
    "sum",
    "any",
    "all",
    "count_nonzero",
    "flatnonzero",
    "isnan",
):
    globals()[_name] = _dispatch(_name)


def __getattr__(name):
    raise AttributeError(f"fakegpu's cupy does not emulate cupy.{name}; add it to tests/fakegpu if ncbench needs it")


from . import cuda as cuda  # last: cuda uses ndarray
