"""What each op moves and how it is checked: nccl-tests' layouts, factors and exact data."""

import numpy as np
import pytest

from ncbench import ops
from ncbench.errors import NcbenchError
from ncbench.units import format_size, parse_int_list, parse_size


@pytest.mark.parametrize(
    "name, nbytes, nranks, elt, expected",
    [
        # (count, send, recv, block) as nccl-tests' getCollByteCount computes them
        ("allreduce", 1 << 20, 8, 4, (262144, 262144, 262144, 262144)),
        ("allgather", 1 << 20, 8, 4, (32768, 32768, 262144, 32768)),
        ("reducescatter", 1 << 20, 8, 4, (32768, 262144, 32768, 32768)),
        ("alltoall", 1 << 20, 8, 4, (32768, 262144, 262144, 32768)),
        ("allgather", 8, 4, 4, (0, 0, 0, 0)),  # rounded down to 16-byte blocks: nccl-tests prints size 0
        ("allgather", 100, 3, 1, (32, 32, 96, 32)),  # 33 per rank rounded down to 32
        ("broadcast", 24, 2, 8, (3, 3, 3, 3)),
    ],
)
def test_layout_matches_nccl_tests(name, nbytes, nranks, elt, expected):
    layout = ops.OPS[name].layout(nbytes, nranks, elt)
    assert (layout.count, layout.send_count, layout.recv_count, layout.block) == expected


@pytest.mark.parametrize(
    "name, p, factor",
    [
        ("allreduce", 8, 1.75),
        ("allgather", 8, 0.875),
        ("reducescatter", 4, 0.75),
        ("alltoall", 2, 0.5),
        ("broadcast", 8, 1.0),
        ("reduce", 8, 1.0),
        ("sendrecv", 8, 1.0),
        ("allreduce", 1, 0.0),
    ],
)
def test_busbw_factors_are_nccl_tests(name, p, factor):
    assert ops.OPS[name].busbw_factor(p) == pytest.approx(factor)


def test_bandwidth_definitions():
    # 1 MiB in 100 us: algbw 10.49 GB/s; allreduce busbw at 8 ranks is 1.75x that
    assert ops.algbw_GBps(1 << 20, 100.0) == pytest.approx(10.48576)
    assert ops.busbw_GBps(ops.OPS["allreduce"], 1 << 20, 100.0, 8) == pytest.approx(10.48576 * 1.75)


@pytest.mark.parametrize("dtype", list(ops.DTYPES))
@pytest.mark.parametrize("redop", ops.REDOPS)
@pytest.mark.parametrize("nranks", [1, 2, 3, 8, 100])
def test_closed_form_reduction_equals_reducing_every_rank(dtype, redop, nranks):
    if dtype in ("bfloat16", "f8e4m3", "f8e5m2"):
        pytest.importorskip("ml_dtypes")
    dt = ops.DTYPES[dtype]
    parts = np.stack([ops.contribution(np, dt, redop, r, 5, 300, nranks).astype(np.float64) for r in range(nranks)])
    brute = {
        "sum": parts.sum(0),
        "prod": parts.prod(0),
        "max": parts.max(0),
        "min": parts.min(0),
        "avg": parts.sum(0) / nranks,
    }[redop]
    got = ops.reduced(np, dt, redop, 5, 300, nranks).astype(np.float64)
    if dt.exact_below is None:  # integers wrap like C; avg truncates like an integer division
        want = (np.floor(brute) if redop == "avg" else brute).astype(np.int64).astype(dt.numpy).astype(np.float64)
        np.testing.assert_array_equal(got, want)
    elif ops.exact(dt, nranks):
        ulp = 2.0 / dt.exact_below  # an average is rounded to the dtype: within one ulp (relative)
        np.testing.assert_allclose(got, brute, rtol=ulp if redop == "avg" else 0)


def test_corruption_is_visible_to_every_redop():
    dt = ops.DTYPES["int8"]
    for redop in ops.REDOPS:
        good = [ops.contribution(np, dt, redop, r, 0, 64, 4) for r in range(4)]
        bad = list(good)
        bad[1] = ops.corrupt(np, good[1], redop)
        reduce = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min, "avg": np.sum}[redop]
        assert (reduce(np.stack(bad), 0) != reduce(np.stack(good), 0)).all(), redop


def test_expected_names_the_source_of_every_block():
    layout = ops.OPS["allgather"].layout(64, 4, 4)  # 4 floats per rank
    values, sources = ops.OPS["allgather"].expect(np, ops.DTYPES["float"], "sum", layout, 2, 4, 0)
    assert sources == [0, 1, 2, 3] and len(values) == 16
    values, sources = ops.OPS["sendrecv"].expect(np, ops.DTYPES["float"], "sum", layout, 0, 4, 0)
    assert sources == [3]  # rank 0 receives from its left neighbour
    assert ops.OPS["reduce"].expect(np, ops.DTYPES["float"], "sum", layout, 1, 4, 0) == (None, None)


@pytest.mark.parametrize("text, nbytes", [("8", 8), ("64K", 65536), ("128M", 128 << 20), ("1G", 1 << 30), ("2k", 2048)])
def test_sizes_are_binary_like_nccl_tests(text, nbytes):
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("bad", ["", "1.5M", "-8", "12Q", "M"])
def test_bad_sizes_say_so(bad):
    with pytest.raises(NcbenchError, match="is not a size"):
        parse_size(bad)


def test_counts_and_names():
    assert parse_int_list("1,2,4", what="--nodes") == [1, 2, 4]
    assert parse_int_list("200k,1M", what="--gpus") == [200000, 1000000]
    assert format_size(1 << 20) == "1MiB" and format_size(12) == "12B"
    assert ops.dtype("float32").name == "float" and ops.dtype("bf16").name == "bfloat16"
    with pytest.raises(NcbenchError, match="unknown datatype"):
        ops.dtype("float128")
