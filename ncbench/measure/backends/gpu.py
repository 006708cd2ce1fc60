"""What the GPU backends share: device choice, availability, metadata, CUDA events and graphs.

local rank + visible devices -> a device; CuPy stream -> per-sample device times and captured batches.
CuPy is imported inside functions, so this module loads on machines without it.
"""

import ctypes
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from ...errors import NcbenchError
from ...ops import DType

NO_GPU_HINT = (
    "run on a node with an NVIDIA GPU and its driver (check nvidia-smi and CUDA_VISIBLE_DEVICES), "
    "or use --backend mpi for host buffers"
)
GPU_HINT = "install CuPy with pip install 'ncbench[gpu]' (or cupy-cuda12x / cupy-cuda13x) on a machine with NVIDIA GPUs"


def select_device(local_rank: int, local_size: int, device_count: int) -> int:
    """Return the CUDA device for this node-local rank: one rank per GPU (NCCL allows no sharing).

    Devices are numbered among those CUDA_VISIBLE_DEVICES shows, as CUDA itself numbers them.
    """
    if device_count < 1:
        raise NcbenchError(f"no CUDA GPU is visible here; {GPU_HINT}")
    if local_size > device_count:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        raise NcbenchError(
            f"{local_size} ranks share this node but only {device_count} GPU(s) are visible{shown}; "
            f"launch at most {device_count} ranks per node: NCCL needs one GPU per rank"
        )
    return local_rank


def local_rank(hosts: list[str] | tuple[str, ...], rank: int) -> tuple[int, int]:
    """Return (this rank's position among the ranks on its host, ranks on that host)."""
    mine = [r for r, h in enumerate(hosts) if h == hosts[rank]]
    return mine.index(rank), len(mine)


def unavailable() -> str | None:
    """Return why no GPU backend can run in this process, or None when CuPy sees a GPU."""
    try:
        import cupy
    except ImportError:
        return f"GPU backends need CuPy, which is not installed; {GPU_HINT}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # noqa: BLE001 - CUDARuntimeError without a driver, ImportError without libcuda
        return (
            f"CuPy {cupy.__version__} is installed but cannot reach a CUDA GPU here ({type(err).__name__}: {err}); "
            f"{NO_GPU_HINT}"
        )
    if count > 0:
        return None
    return f"CuPy {cupy.__version__} is installed but no CUDA GPU is visible here; {NO_GPU_HINT}"


# Floats CuPy cannot hold, carried as the bits NCCL reads: storage dtype, exponent bits, mantissa bits.
BITS = {"bfloat16": ("uint16", 8, 7), "float8_e4m3fn": ("uint8", 4, 3), "float8_e5m2": ("uint8", 5, 2)}


def storage_dtype(dt: DType) -> str:
    """Return the CuPy dtype that holds `dt`: bfloat16's bits live in uint16, fp8's in uint8."""
    return BITS[dt.numpy][0] if dt.numpy in BITS else dt.numpy


def value_dtype(dt: DType) -> DType:
    """Return the dtype to compute `dt`'s values in: float32 for bits-only floats, keeping their exactness."""
    return replace(dt, numpy="float32") if dt.numpy in BITS else dt


def encode(xp, values, dt: DType):
    """Return `values` (float32 for bits-only floats) in the storage dtype.

    Normal numbers are truncated to the format's mantissa, which is exact for the integers and halves
    that validation uses; zero keeps its sign. Subnormals, NaN and overflow are not encoded.
    """
    if dt.numpy not in BITS:
        return values
    storage, ebits, mbits = BITS[dt.numpy]
    width, bias = 1 + ebits + mbits, (1 << (ebits - 1)) - 1
    b = values.astype(xp.float32).view(xp.uint32)
    sign = (b >> (32 - width)) & (1 << (width - 1))
    exponent = ((b >> 23) & 0xFF) - (127 - bias)  # wraps for numbers too small to be normal here
    bits = sign | ((exponent << mbits) & ((1 << (width - 1)) - 1)) | ((b & 0x7FFFFF) >> (23 - mbits))
    return xp.where(values == 0, sign, bits).astype(storage)


def decode(xp, stored, dt: DType):
    """Return stored bits of a bits-only float as float32 values (exact), other dtypes unchanged."""
    if dt.numpy not in BITS:
        return stored
    _, ebits, mbits = BITS[dt.numpy]
    width, bias = 1 + ebits + mbits, (1 << (ebits - 1)) - 1
    s = stored.astype(xp.uint32)
    exponent, mantissa = (s >> mbits) & ((1 << ebits) - 1), s & ((1 << mbits) - 1)
    sign = (s >> (width - 1)) << 31
    normal = (sign | ((exponent + (127 - bias)) << 23) | (mantissa << (23 - mbits))).view(xp.float32)
    tiny = mantissa.astype(xp.float32) * xp.float32(2.0 ** (1 - bias - mbits))  # subnormals and zero
    return xp.where(exponent == 0, xp.where(sign > 0, -tiny, tiny), normal)


class DeviceTimer:
    """CUDA events around each sample on one stream: device time, free of Python's launch cost."""

    def __init__(self, stream):
        import cupy

        self.cupy = cupy
        self.stream = stream
        self.start_event, self.stop_event = cupy.cuda.Event(), cupy.cuda.Event()

    def start(self) -> None:
        self.start_event.record(self.stream)

    def stop(self) -> None:
        self.stop_event.record(self.stream)

    def elapsed_s(self) -> float:
        """Seconds between the two events (call after the stream was synchronised)."""
        return self.cupy.cuda.get_elapsed_time(self.start_event, self.stop_event) * 1e-3


def captured_batch(stream, call, iters: int):
    """Return a callable that replays `iters` calls captured once in a CUDA graph (nccl-tests -G)."""
    stream.begin_capture()
    try:
        for _ in range(iters):
            call()
    finally:
        graph = stream.end_capture()
    if hasattr(graph, "upload"):  # pre-instantiate on the device so the first timed launch is not slower
        graph.upload(stream)
    return lambda: graph.launch(stream)


DEVICE_RESERVE_BYTES = 1 << 30  # left free for the CUDA context and NCCL's own buffers (channels x peers)


def describe_device() -> tuple[int, str, str]:
    """Return the current CUDA device's (ordinal, PCI bus id, model name)."""
    import cupy

    device = cupy.cuda.Device()
    name = cupy.cuda.runtime.getDeviceProperties(device.id)["name"]
    return device.id, device.pci_bus_id, name.decode() if isinstance(name, bytes) else str(name)


def device_memory_problem(bytes_per_rank: int, hosts: list[str], rank: int) -> str | None:
    """Return why `bytes_per_rank` of buffers will not fit on the GPU this rank will use, or None.

    Asked before any communicator exists, on the device `select_device` will choose, so a sweep too
    large for the GPU is one sentence (exit 64) instead of an out-of-memory error mid-run.
    """
    import cupy

    local, local_size = local_rank(hosts, rank)
    try:
        with cupy.cuda.Device(select_device(local, local_size, cupy.cuda.runtime.getDeviceCount())):
            free, total = cupy.cuda.runtime.memGetInfo()
            ordinal, _, name = describe_device()
    except NcbenchError as err:
        return str(err)
    if bytes_per_rank + DEVICE_RESERVE_BYTES <= free:
        return None
    return (
        f"the largest size needs {bytes_per_rank / 2**30:.2f} GiB of GPU buffers per rank (plus "
        f"{DEVICE_RESERVE_BYTES / 2**30:.0f} GiB kept for CUDA and NCCL), but device {ordinal} ({name}) on "
        f"{hosts[rank]} has {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB; lower -e"
    )


def gpu_metadata() -> dict:
    """Return GPU model, driver, CUDA runtime and CuPy versions, and `nvidia-smi topo -m` if it runs."""
    import cupy

    runtime = cupy.cuda.runtime
    ordinal, bus_id, name = describe_device()
    props = runtime.getDeviceProperties(ordinal)
    meta = {
        "gpu": name,
        "gpu_memory_bytes": int(props.get("totalGlobalMem", 0)),
        "pci_bus_id": bus_id,
        "cuda_driver": runtime.driverGetVersion(),
        "cuda_runtime": runtime.runtimeGetVersion(),
        "cupy": cupy.__version__,
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    if shutil.which("nvidia-smi"):
        try:
            meta["topology"] = subprocess.run(
                ["nvidia-smi", "topo", "-m"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            meta["topology"] = None
    return meta


MPIX_GPU_SUPPORT_CUDA = 0  # MPICH's mpi-ext.h enum value for CUDA


def cuda_aware_mpi() -> tuple[bool | None, str]:
    """Return (True/False, how we know) whether the running MPI library takes CUDA buffers, or None.

    Asks the library itself: MPICH's MPIX_GPU_query_support, else MPIX_Query_cuda_support (Open MPI's,
    and MPICH's older one). mpi4py loads libmpi privately, so it is found in /proc/self/maps.
    """
    for path in _loaded_mpi_libraries():
        lib = ctypes.CDLL(path)
        name = Path(path).name
        if hasattr(lib, "MPIX_GPU_query_support"):
            query = lib.MPIX_GPU_query_support
            query.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
            supported = ctypes.c_int(0)
            if query(MPIX_GPU_SUPPORT_CUDA, ctypes.byref(supported)) == 0:
                return bool(supported.value), f"MPIX_GPU_query_support(CUDA) in {name}"
        if hasattr(lib, "MPIX_Query_cuda_support"):
            return bool(lib.MPIX_Query_cuda_support()), f"MPIX_Query_cuda_support() in {name}"
    return None, "the MPI library offers no CUDA query (MPIX_Query_cuda_support / MPIX_GPU_query_support)"


def _loaded_mpi_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as maps:
            found = {line.split()[-1] for line in maps if "libmpi" in line}
    except OSError:
        return []
    return sorted(p for p in found if p.startswith("/"))
