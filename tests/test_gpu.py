"""GPU backends end to end under mpiexec: on a real GPU where CuPy sees one, and always on fakegpu.

`gpu`: every visible GPU gets a rank (one H100 means a communicator of size 1, legal in NCCL, which
exercises the whole path but cannot catch a wrong rank offset). Skipped where CuPy sees no GPU (CI).
`fakegpu`: tests/fakegpu's strict stand-in for CuPy and NCCL on MPI, with 3 ranks, so rank offsets,
grouped send/recv, stream order and graph capture are checked on every CI run. It proves logic, not speed.
"""

import os
import time

import pytest
from conftest import ROOT, requires_mpi, run_mpi

from ncbench import records
from ncbench.measure.backends import gpu

pytestmark = [requires_mpi]
FAKE = {
    "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakegpu"), os.environ.get("PYTHONPATH", "")]),
    "FAKEGPU_DEVICES": "8",
    "FAKEGPU_MEMORY_GIB": "80",
}
COLLECTIVES = ("allreduce", "allgather", "reducescatter", "broadcast", "reduce", "alltoall", "sendrecv")


class Platform:
    def __init__(self, name: str):
        self.name = name
        self.env = dict(FAKE) if name == "fakegpu" else {}
        if name == "gpu":
            import cupy

            self.ranks = min(4, cupy.cuda.runtime.getDeviceCount())
            self.timing = ("--time-budget", "0.01", "--samples", "3", "-w", "2")
            self.quick = (*self.timing, "-b", "8", "-e", "1M", "-f", "16")
        else:
            self.ranks = 3
            self.timing = ("--time-budget", "0.002", "--samples", "3", "-w", "1")
            self.quick = (*self.timing, "-b", "8", "-e", "64K", "-f", "16")

    def run(self, *args, env=None, ranks=None, timeout=300):
        return run_mpi(ranks or self.ranks, *args, env={**self.env, **(env or {})}, timeout=timeout)


QUICK_FAKE, TIMING_FAKE = Platform("fakegpu").quick, Platform("fakegpu").timing


@pytest.fixture(params=[pytest.param("gpu", marks=pytest.mark.gpu), "fakegpu"])
def platform(request):
    if request.param == "gpu" and gpu.unavailable() is not None:
        pytest.skip(str(gpu.unavailable()))
    return Platform(request.param)


def _clean(frame) -> bool:
    return bool(((frame.wrong == 0) | (frame.wrong == -1)).all())


@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("op", COLLECTIVES)
def test_nccl_collectives_are_correct(platform, tmp_path, op, graph):
    out = tmp_path / "r.csv"
    extra = ["-d", "all"] + (["-r", "-1"] if op in ("broadcast", "reduce") else [])
    done = platform.run(op, "--backend", "nccl", *platform.quick, *extra, *(["--graph"] if graph else []), "--out", out)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = records.load(out)
    assert {"bfloat16", "half", "double", "int8"} <= set(frame.dtype) and _clean(frame)
    if platform.name == "fakegpu":  # sm_90 and NCCL 2.27 there; a real GPU shows fp8 where it has them
        assert {"f8e4m3", "f8e5m2"} <= set(frame.dtype)
    assert (frame.wrong == 0).any() and (frame.device_time_us > 0).all()
    assert set(frame.timing) == {"graph" if graph else "host+events"} and set(frame.nranks) == {platform.ranks}
    meta = records.load_meta(out)
    assert meta["communicators"][0]["init_s"] > 0 and "nccl" in meta["backend_versions"]
    assert meta["backend_versions"]["gpu"] and meta["backend_versions"]["cuda_runtime"]
    assert meta["backend_versions"]["nccl_topology_xml"].lstrip().startswith("<system")  # NCCL's own view
    devices = [line.split(" device ")[1].split()[0] for line in done.stdout.splitlines() if line.startswith("#  Rank")]
    assert devices == [str(d) for d in range(platform.ranks)]  # one GPU per rank, from the local rank
    used = meta["communicators"][0]["devices"]
    assert [(d["rank"], d["device"]) for d in used] == [(r, r) for r in range(platform.ranks)] and used[0]["model"]


def test_nccl_graph_launched_n_times_as_nccl_tests_g(platform, tmp_path):
    out = tmp_path / "r.csv"
    done = platform.run("allreduce", "--backend", "nccl", *platform.quick, "-G", "3", "--out", out)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = records.load(out)
    assert set(frame.timing) == {"graph"} and (frame.iters % 3 == 0).all() and _clean(frame)
    assert " graph: 3 " in done.stdout  # the preamble says how many launches, as nccl-tests does


@pytest.mark.parametrize("op", ["allreduce", "reduce", "reducescatter"])
def test_nccl_every_reduction_op(platform, tmp_path, op):
    out = tmp_path / "r.csv"
    fp8 = ",f8e4m3,f8e5m2" if platform.name == "fakegpu" else ""  # a real GPU runs them under -d all if it can
    done = platform.run(
        op,
        "--backend",
        "nccl",
        *platform.quick,
        "-d",
        f"bfloat16,half,float,int32,uint8{fp8}",
        "-o",
        "all",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    frame = records.load(out)
    assert set(frame.redop) == {"sum", "prod", "max", "min", "avg"} and _clean(frame)


def test_nccl_names_a_corrupting_rank(platform, tmp_path):
    bad = platform.ranks - 1
    done = platform.run(
        "allreduce",
        "--backend",
        "nccl",
        *platform.quick,
        "--out",
        tmp_path / "r.csv",
        env={"NCBENCH_INJECT": f"corrupt:rank={bad}"},
    )
    assert done.returncode == 2 and f"came from rank(s) {bad}" in done.stdout, done.stdout + done.stderr


def test_nccl_times_a_communicator_per_node_step(platform, tmp_path):
    if platform.ranks < 2:
        pytest.skip("one GPU: a single node step")
    out = tmp_path / "r.csv"
    done = platform.run(
        "allreduce",
        "--backend",
        "nccl",
        *platform.quick,
        "--ranks-per-node",
        "1",
        "--nodes",
        f"1,{platform.ranks}",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = records.load_meta(out)["communicators"]
    assert [(s["nnodes"], s["nranks"]) for s in steps] == [(1, 1), (platform.ranks, platform.ranks)]
    assert all(s["init_s"] > 0 for s in steps) and done.stdout.count("nccl communicator of") == 2


@pytest.mark.parametrize("pairs", ["self", "all"])
def test_nccl_p2p_osu_trio(platform, tmp_path, pairs):
    if pairs == "all" and platform.ranks < 2:
        pytest.skip("one GPU: no pair of ranks")
    out = tmp_path / "p.csv"
    done = platform.run("p2p", "--backend", "nccl", "--pairs", pairs, *platform.timing, "-e", "64K", "--out", out)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = records.load(out)
    want = (
        {(r, r) for r in range(platform.ranks)}
        if pairs == "self"
        else {(a, b) for a in range(platform.ranks) for b in range(a + 1, platform.ranks)}
    )
    assert set(zip(frame.peer_a, frame.peer_b)) == want and (frame.wrong == 0).all()
    assert set(frame.op) == ({"latency", "bw"} if pairs == "self" else {"latency", "bw", "bibw"})
    assert set(frame.backend) == {"nccl"} and (frame.device_time_us > 0).all() and (frame.algbw_GBps > 0).all()
    assert records.load_meta(out)["communicators"][0]["init_s"] > 0


def test_nccl_p2p_names_the_sender_of_bad_data(tmp_path):
    done = run_mpi(
        2,
        "p2p",
        "--backend",
        "nccl",
        "-e",
        "1K",
        *TIMING_FAKE,
        "--out",
        tmp_path / "p.csv",
        env={**FAKE, "NCBENCH_INJECT": "corrupt:rank=0"},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert set(records.load(tmp_path / "p.csv").wrong_sources) == {"0"}


def test_cuda_mpi_p2p_needs_a_cuda_aware_library(tmp_path):
    refused = run_mpi(2, "p2p", "--backend", "cuda-mpi", "--out", tmp_path / "p.csv", env=FAKE)
    assert refused.returncode == 64 and "not CUDA-aware" in refused.stderr and "--staged" not in refused.stderr
    done = run_mpi(
        2,
        "p2p",
        "--backend",
        "cuda-mpi",
        "--assume-cuda-aware",
        "-e",
        "4K",
        *TIMING_FAKE,
        "--out",
        tmp_path / "q.csv",
        env=FAKE,
    )
    assert done.returncode == 0 and (records.load(tmp_path / "q.csv").wrong == 0).all(), done.stderr


@pytest.mark.parametrize("op", COLLECTIVES)
def test_cuda_mpi_staged_is_correct_and_labelled(platform, tmp_path, op):
    out = tmp_path / "r.csv"
    done = platform.run(
        op, "--backend", "cuda-mpi", "--staged", *platform.quick, "-d", "float,half,int64", "--out", out
    )
    assert done.returncode == 0, done.stdout + done.stderr
    frame = records.load(out)
    assert _clean(frame) and (frame.timing.str.contains("staged")).all()


def test_cuda_mpi_on_device_buffers_when_assumed_aware(tmp_path):
    out = tmp_path / "r.csv"
    done = run_mpi(3, "alltoall", "--backend", "cuda-mpi", "--assume-cuda-aware", *QUICK_FAKE, "--out", out, env=FAKE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _clean(records.load(out)) and set(records.load(out).timing) == {"host, CUDA-aware MPI"}


def test_cuda_mpi_refuses_a_library_that_is_not_cuda_aware(tmp_path):
    done = run_mpi(2, "allreduce", "--backend", "cuda-mpi", "--out", tmp_path / "r.csv", env=FAKE)
    assert done.returncode == 64 and "not CUDA-aware" in done.stderr and "--staged" in done.stderr
    assert not (tmp_path / "r.csv").exists()


# -- failures on fakegpu: each is one sentence and the documented exit code ------------------------------


def test_an_asynchronous_nccl_error_names_the_rank_and_exits_3(tmp_path):
    done = run_mpi(
        3,
        "allreduce",
        "--backend",
        "nccl",
        *QUICK_FAKE,
        "--out",
        tmp_path / "r.csv",
        env={**FAKE, "FAKEGPU_ASYNC_ERROR": "2"},
    )
    assert done.returncode == 3 and "NCCL reported an error on rank 2" in done.stderr, done.stderr


def test_a_call_nccl_refuses_is_one_sentence_naming_the_operation(tmp_path):
    done = run_mpi(
        2,
        "allreduce",
        "--backend",
        "nccl",
        *QUICK_FAKE,
        "-d",
        "float,f8e4m3",
        "--out",
        tmp_path / "r.csv",
        env={**FAKE, "FAKEGPU_REFUSE_TYPE": "10"},
    )
    assert done.returncode == 3, done.stderr
    assert "NCCL refused the call" in done.stderr and "in allreduce 8B f8e4m3 sum (out-of-place) on rank" in done.stderr
    assert "Traceback" not in done.stderr and len(records.load(tmp_path / "r.csv")) > 0  # float rows were kept


def test_fp8_is_left_out_of_d_all_before_hopper_as_nccl_tests_does(tmp_path):
    out = tmp_path / "r.csv"
    done = run_mpi(
        2, "allgather", "--backend", "nccl", *QUICK_FAKE, "-d", "all", "--out", out, env={**FAKE, "FAKEGPU_SM": "80"}
    )
    assert done.returncode == 0, done.stderr
    dtypes = set(records.load(out).dtype)
    assert "bfloat16" in dtypes and not dtypes & {"f8e4m3", "f8e5m2"}


def test_an_nccl_error_during_a_wait_is_polled_not_left_to_the_watchdog(tmp_path):
    start = time.monotonic()  # rank 1's kernel never completes; NCCL reports the broken connection
    done = run_mpi(
        3,
        "allreduce",
        "--backend",
        "nccl",
        *QUICK_FAKE,
        "--timeout",
        "100",
        "--out",
        tmp_path / "r.csv",
        env={**FAKE, "FAKEGPU_STUCK": "1:40"},
        timeout=90,
    )
    assert done.returncode == 3 and "NCCL reported an error on rank 1" in done.stderr, done.stderr
    assert time.monotonic() - start < 60 and "waited 100 s" not in done.stderr  # long before the watchdog


def test_a_stalled_rank_ends_the_run_with_exit_3_not_a_hang(tmp_path):
    out = tmp_path / "r.csv"
    done = run_mpi(
        3,
        "allreduce",
        "--backend",
        "nccl",
        *QUICK_FAKE,
        "--timeout",
        "3",
        "--out",
        out,
        env={**FAKE, "NCBENCH_INJECT": "stall:rank=1:after=3"},
        timeout=120,
    )
    assert done.returncode == 3 and "waited 3 s inside allreduce" in done.stderr, done.stderr
    assert "abort failed" not in done.stderr  # the watchdog aborted the NCCL communicator first
    meta = records.load_meta(out)  # the sidecar says how the run ended: a timeout, not a finished run
    assert (meta["status"], meta["exit_code"]) == ("timed_out", 3)


@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        ({"FAKEGPU_NO_DRIVER": "1"}, (), "is installed but cannot reach a CUDA GPU here"),
        ({"FAKEGPU_DEVICES": "0"}, (), "is installed but no CUDA GPU is visible here"),
        ({"CUDA_VISIBLE_DEVICES": "0"}, (), "only 1 GPU(s) are visible (CUDA_VISIBLE_DEVICES=0)"),
        ({"FAKEGPU_MEMORY_GIB": "1.5"}, ("-b", "512M", "-e", "512M"), "GiB free of 1.5 GiB; lower -e"),
        ({}, ("--graph", "--staged"), "needs --backend cuda-mpi"),
        ({}, ("-G", "-1"), "must be 0 (off) or more"),
        ({"FAKEGPU_SM": "80"}, ("-d", "f8e4m3"), "needs NCCL 2.24 or newer and a GPU of compute capability 9.0"),
    ],
    ids=[
        "no-driver",
        "no-gpu",
        "too-few-gpus",
        "too-big-for-the-gpu",
        "staged-on-nccl",
        "negative-G",
        "fp8-before-hopper",
    ],
)
def test_gpu_backends_refuse_in_one_sentence(tmp_path, env, args, says):
    done = run_mpi(2, "allreduce", "--backend", "nccl", *args, "--out", tmp_path / "r.csv", env={**FAKE, **env})
    assert done.returncode == 64 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r.csv").exists()
    assert "install CuPy" not in done.stderr  # CuPy is there: the advice is about the GPU, not the package
