"""On a real GPU: every collective through NCCL and CUDA-aware/staged MPI, with graphs and events.

One GPU means one rank per GPU: a communicator of size 1 is legal in NCCL and exercises the whole path.
Skipped cleanly where CuPy sees no GPU (CI).
"""

import pytest
from conftest import requires_mpi, run_mpi

from ncbench import records
from ncbench.backends import gpu

pytestmark = [
    requires_mpi,
    pytest.mark.gpu,
    pytest.mark.skipif(gpu.unavailable() is not None, reason=str(gpu.unavailable())),
]
QUICK = ("--time-budget", "0.01", "--samples", "3", "-w", "2", "-b", "8", "-e", "1M", "-f", "16")
COLLECTIVES = ("allreduce", "allgather", "reducescatter", "broadcast", "reduce", "alltoall", "sendrecv")


@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("op", COLLECTIVES)
def test_nccl_collectives_are_correct(tmp_path, op, graph):
    out = tmp_path / "r.csv"
    extra = ["-d", "all", "-o", "all"] if op in ("allreduce", "reduce", "reducescatter") else ["-d", "all"]
    done = run_mpi(1, op, "--backend", "nccl", *QUICK, *extra, *(["--graph"] if graph else []), "--out", out)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = records.load(out)
    assert "bfloat16" in set(frame.dtype) and "half" in set(frame.dtype)
    assert ((frame.wrong == 0) | (frame.wrong == -1)).all()
    assert (frame.device_time_us > 0).all()
    assert set(frame.timing) == {"graph" if graph else "host+events"}
    meta = records.load_meta(out)
    assert meta["communicators"][0]["init_s"] > 0 and "nccl" in meta["backend_versions"]


def test_nccl_names_a_corrupting_rank(tmp_path):
    done = run_mpi(1, "allreduce", "--backend", "nccl", *QUICK, "--out", tmp_path / "r.csv",
                   env={"NCBENCH_INJECT": "corrupt:rank=0"})  # fmt: skip
    assert done.returncode == 2 and "came from rank(s) 0" in done.stdout


@pytest.mark.parametrize("op", COLLECTIVES)
def test_cuda_mpi_staged_is_correct_and_labelled(tmp_path, op):
    out = tmp_path / "r.csv"
    done = run_mpi(1, op, "--backend", "cuda-mpi", "--staged", *QUICK, "--out", out)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = records.load(out)
    assert ((frame.wrong == 0) | (frame.wrong == -1)).all() and (frame.timing.str.contains("staged")).all()
