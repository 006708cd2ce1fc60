"""The table an nccl-tests user reads at a glance: the same header, widths and number rules."""

from ncbench.measure import table

# nccl-tests v2.17.3+ header, rendered from its format strings (reference/nccl-tests.md, layout §2a)
NCCL_HEADER = [
    "#                                                              out-of-place                       in-place          ",
    "#       size         count      type   redop    root     time   algbw   busbw  #wrong     time   algbw   busbw  #wrong ",
    "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)             (us)  (GB/s)  (GB/s)         ",
]
NCCL_ROW = "     1048576        262144     float     sum      -1   512.40    2.05    3.84       0   509.77    2.06    3.86       0"


def _row(time_us, algbw, busbw, wrong=0, in_place=False):
    return {
        "nbytes": 1048576,
        "count": 262144,
        "dtype": "float",
        "redop": "sum",
        "root": -1,
        "time_us": time_us,
        "algbw_GBps": algbw,
        "busbw_GBps": busbw,
        "wrong": wrong,
        "in_place": in_place,
    }


def test_header_is_nccl_tests_header():
    assert table.header() == NCCL_HEADER


def test_row_is_nccl_tests_row():
    assert table.row_line(_row(512.4, 2.05, 3.84), _row(509.77, 2.06, 3.86, in_place=True)) == NCCL_ROW


def test_column_spans_match_nccl_tests():
    line = table.row_line(_row(512.4, 2.05, 3.84), _row(509.77, 2.06, 3.86))
    assert line[0:12].strip() == "1048576" and line[54:61].strip() == "512.40" and line[112:118].strip() == "0"


def test_numbers_fit_their_columns():
    assert table.float_str(10243.7, 7) == "10243.7"
    assert table.float_str(161851.0, 7) == " 161851"
    assert len(table.float_str(1.2e9, 7)) == 7
    assert len(table.float_str(43046.1, 6)) == 6


def test_unchecked_prints_na_and_footer_counts_failures():
    assert table.row_line(_row(1, 1, 1, wrong=-1), None).split()[8] == "N/A"
    rows = [_row(1, 1, 2.0, wrong=0), _row(1, 1, 4.0, wrong=3)]
    assert table.footer(rows, "all_reduce")[:2] == ["# Out of bounds values : 1 FAILED", "# Avg bus bandwidth    : 3 "]


def test_p2p_lines_group_tests_by_pair_and_size():
    rows = [
        {"peer_a": 0, "peer_b": 1, "nbytes": 8, "op": "latency", "time_us": 1.5, "algbw_GBps": 0.0, "wrong": 0},
        {"peer_a": 0, "peer_b": 1, "nbytes": 8, "op": "bw", "time_us": 0.1, "algbw_GBps": 0.08, "wrong": 0},
    ]
    (line,) = table.p2p_lines(rows, ["a", "b"])
    assert line.split() == ["0", "1", "a", "b", "8", "1.50", "0.08", "-", "0"]
