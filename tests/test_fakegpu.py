"""tests/fakegpu must stay strict: each rule a GPU enforces (or breaks on) must raise there too.

Run in a subprocess with tests/fakegpu on PYTHONPATH, so the fake never shadows a real CuPy here.
"""

import subprocess
import sys
import textwrap

import pytest
from conftest import requires_mpi
from test_gpu import FAKE

pytestmark = [requires_mpi]

SETUP = """
import numpy as np
import cupy
from cupy.cuda import nccl
from mpi4py import MPI
cupy.cuda.Device(0).use()
stream = cupy.cuda.Stream(non_blocking=True)
comm = nccl.NcclCommunicator(1, nccl.get_unique_id(), 0)
a, b = cupy.zeros(64, dtype="float32"), cupy.zeros(64, dtype="float32")
stream.synchronize(); cupy.cuda.Stream.null.synchronize()
"""


def fake(body: str) -> subprocess.CompletedProcess:
    code = SETUP + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **FAKE},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            "a[...] = 1\ncomm.allReduce(a.data.ptr, b.data.ptr, 64, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream.ptr)",
            "StreamOrderError",
        ),  # a kernel on the legacy stream, then NCCL on a non-blocking one: a race
        (
            "comm.allReduce(a.data.ptr, b.data.ptr, 64, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream.ptr)\nint(b[0])",
            "StreamOrderError",
        ),  # reading the result before the NCCL stream was synchronised
        (
            "comm.allReduce(a.data.ptr, b.data.ptr, 65, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream.ptr)",
            "not inside one device allocation",
        ),  # one element past the end
        (
            "h = np.zeros(64, dtype=np.float32)\ncomm.allReduce(h.ctypes.data, b.data.ptr, 64, 7, 0, stream.ptr)",
            "not inside one device allocation",
        ),  # host memory
        ("a + np.ones(64, dtype=np.float32)", "TypeError"),  # CuPy refuses NumPy operands
        ("stream.begin_capture()\nstream.synchronize()", "CaptureError"),
        ("stream.use()\nstream.begin_capture()\na[...] = 2", "CaptureError"),  # a kernel would be captured
        ("nccl.NcclCommunicator(1, tuple(nccl.get_unique_id()), 0)", "TypeError"),  # CuPy 14 takes bytes
    ],
    ids=[
        "race-in",
        "race-out",
        "overrun",
        "host-pointer",
        "numpy-operand",
        "sync-in-capture",
        "kernel-in-capture",
        "uid-type",
    ],
)
def test_the_fake_refuses_what_a_gpu_would_not_do(body, error):
    done = fake(body)
    assert done.returncode != 0 and error in done.stderr, done.stderr


def test_the_fake_accepts_ordered_work_and_graphs_replay_nccl():
    done = fake("""
        stream.use()
        a[...] = 3
        comm.allReduce(a.data.ptr, b.data.ptr, 64, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream.ptr)
        stream.synchronize()
        assert int(b[5]) == 3
        stream.begin_capture()
        nccl.groupStart()
        comm.send(a.data.ptr, 64, nccl.NCCL_FLOAT32, 0, stream.ptr)
        comm.recv(b.data.ptr, 64, nccl.NCCL_FLOAT32, 0, stream.ptr)
        nccl.groupEnd()
        graph = stream.end_capture()
        a[...] = 7
        stream.synchronize()
        assert int(b[0]) == 3  # captured, not run
        graph.launch(stream)
        stream.synchronize()
        assert int(b[0]) == 7  # the replay read a's current contents
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_fake_rounds_bfloat16_sums_as_a_gpu_stores_them():
    done = fake("""
        from cupy.cuda.nccl import _reduce
        bits = lambda x: (np.array(x, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
        rows = np.stack([bits([256.0]), bits([1.0]), bits([1.0])]).view(np.uint8)
        got = _reduce(rows, nccl.NCCL_BFLOAT16, nccl.NCCL_SUM).view(np.uint16)
        print((got.astype(np.uint32) << 16).view(np.float32)[0])
    """)
    assert done.returncode == 0 and done.stdout.strip() == "256.0", done.stderr  # 256+1 rounds to 256, twice
