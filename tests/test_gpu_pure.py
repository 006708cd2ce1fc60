"""GPU backend logic that needs no GPU: device choice, bfloat16 bits, CUDA-aware detection, refusals."""

import numpy as np
import pytest
from conftest import requires_mpi, run_mpi

from ncbench import ops
from ncbench.errors import NcbenchError
from ncbench.measure.backends import gpu


def test_one_gpu_per_rank_from_the_local_rank():
    assert gpu.local_rank(["a", "a", "b", "b"], 3) == (1, 2)
    assert gpu.select_device(1, 2, device_count=8) == 1
    with pytest.raises(NcbenchError, match="only 1 GPU"):
        gpu.select_device(0, 2, device_count=1)
    with pytest.raises(NcbenchError, match="no CUDA GPU"):
        gpu.select_device(0, 1, device_count=0)


def test_visible_devices_are_named_when_too_few(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(NcbenchError, match="CUDA_VISIBLE_DEVICES=3"):
        gpu.select_device(0, 4, device_count=1)


@pytest.mark.parametrize(("name", "storage"), [("bfloat16", np.uint16), ("f8e4m3", np.uint8), ("f8e5m2", np.uint8)])
def test_bits_only_floats_round_trip_exactly(name, storage):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dt = ops.DTYPES[name]
    held, real = gpu.value_dtype(dt), getattr(ml_dtypes, dt.numpy)
    assert (held.numpy, held.exact_below) == ("float32", dt.exact_below)  # float32 math, the format's exactness
    for nranks in (1, 3, 8):
        values = ops.contribution(np, held, "sum", nranks - 1, 0, 500, nranks)  # what the NCCL backend computes
        stored = gpu.encode(np, values, dt)
        assert stored.dtype == storage and gpu.storage_dtype(dt) == np.dtype(storage).name
        np.testing.assert_array_equal(stored.view(real).astype(np.float32), values)  # what NCCL reads
        np.testing.assert_array_equal(gpu.decode(np, stored, dt), values)
    every = np.arange(1 << (8 * dt.size), dtype=storage)  # every bit pattern NCCL could hand back
    finite = np.isfinite(every.view(real).astype(np.float32))
    np.testing.assert_array_equal(gpu.decode(np, every, dt)[finite], every.view(real).astype(np.float32)[finite])


@requires_mpi
def test_pypi_mpich_says_it_is_not_cuda_aware():
    import subprocess
    import sys

    code = "from mpi4py import MPI; from ncbench.measure.backends import gpu; print(gpu.cuda_aware_mpi())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("(False, 'MPIX_GPU_query_support(CUDA) in libmpi")


@requires_mpi
@pytest.mark.skipif(gpu.unavailable() is None, reason="this machine has a GPU")
@pytest.mark.parametrize("backend", ["nccl", "cuda-mpi"])
def test_gpu_backend_without_gpu_is_one_sentence_and_exit_64(tmp_path, backend):
    done = run_mpi(2, "allreduce", "--backend", backend, "-e", "64", "--out", tmp_path / "r.csv", timeout=60)
    assert done.returncode == 64, done.stderr
    assert ("CuPy" in done.stderr or "cupy" in done.stderr) and "Traceback" not in done.stderr
    assert done.stderr.count("ncbench:") == 1 and not (tmp_path / "r.csv").exists()


@requires_mpi
@pytest.mark.parametrize(
    "args, message", [(["--graph"], "needs --backend nccl"), (["--staged"], "needs --backend cuda-mpi")]
)
def test_gpu_flags_on_host_backend_are_refused(tmp_path, args, message):
    done = run_mpi(2, "allreduce", *args, "-e", "64", "--out", tmp_path / "r.csv", timeout=60)
    assert done.returncode == 64 and message in done.stderr


def test_average_tolerance_is_in_ulps_of_the_checked_dtype():
    from ncbench.measure.validate import wrong_mask

    half = ops.DTYPES["half"]
    want = np.array([1000.0, 1000.0, 1000.0], dtype=np.float16)
    got = np.array([1000.0, 1001.0, 1004.0], dtype=np.float16)  # half's ulp at 1000 is 0.5: 0, 2 and 8 ulps off
    assert list(wrong_mask(np, got, want, half, "avg", 4)) == [False, False, True]
    bf16_as_float = ops.DTYPES["bfloat16"]
    want = np.array([100.0, 100.0], dtype=np.float32)
    got = np.array([100.5, 103.0], dtype=np.float32)  # bfloat16's ulp at 100 is 0.5
    assert list(wrong_mask(np, got, want, bf16_as_float, "avg", 4)) == [False, True]
