"""nccl-tests logs of every era become records: rows, ranks, nodes, units, truncation, JSON, refusals."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from ncbench import importers, records
from ncbench.errors import NcbenchError

DATA = Path(__file__).parent / "data" / "nccl-tests"


def test_current_format_with_nccl_info_inside_the_table():
    got = importers.parse_file(DATA / "all_reduce_v2.19_2x2.log")
    m = got.meta
    assert (m["op"], m["nranks"], m["nnodes"], m["ranks_per_node"]) == ("allreduce", 4, 2, 2)
    assert m["nccl_tests_version"] == "2.19.6" and (m["warmup"], m["iters"]) == (1, 20)
    assert [r["nbytes"] for r in got.rows] == [8, 8, 1048576, 1048576, 134217728, 134217728]
    big = got.rows[4]
    assert (big["time_us"], big["busbw_GBps"], big["wrong"], big["in_place"]) == (10243.7, 19.65, 0, False)
    assert got.problems == []


def test_open_mpi_tags_and_na_placements():
    got = importers.parse_file(DATA / "ompi_tagged_v2.15.log", op="alltoall")
    assert got.meta["hosts"] == ["node1", "node2"] and got.meta["nnodes"] == 2
    first_oop, first_ip = got.rows[0], got.rows[1]
    assert first_oop["wrong"] == 4 and first_ip["wrong"] == -1 and first_oop["redop"] == "none"
    with pytest.raises(NcbenchError, match="--op") as err:
        importers.parse_file(DATA / "ompi_tagged_v2.15.log")
    assert err.value.exit_code == 65


def test_v2_root_in_the_redop_column_and_error_is_not_a_count():
    got = importers.parse_file(DATA / "broadcast_perf_v2.8.txt")
    row = got.rows[0]
    assert got.meta["op"] == "broadcast" and row["root"] == 0 and row["time_us"] == 101234
    assert row["wrong"] == -1  # 'error' is a max deviation, not wrong elements


def test_v1_milliseconds_become_microseconds():
    got = importers.parse_file(DATA / "all_gather_v1.log")
    assert got.meta["op"] == "allgather" and got.rows[0]["time_us"] == pytest.approx(512.0)
    assert got.meta["nranks"] == 4  # no device lines: busbw/algbw = (n-1)/n = 0.75


def test_truncated_rows_are_reported_and_complete_ones_kept():
    got = importers.parse_file(DATA / "truncated_srun.log")
    assert got.meta["op"] == "reducescatter"
    assert {r["nbytes"] for r in got.rows} == {4194304}  # the only row with every column
    assert len(got.problems) == 3 and all("truncated" in p for p in got.problems)  # short, short, cut at the end


def test_per_iteration_columns_and_timestamps():
    got = importers.parse_file(DATA / "sendrecv_iter.log")
    oop, ip = got.rows
    assert (oop["time_us"], ip["time_us"], oop["wrong"], ip["wrong"]) == (10.10, 10.00, 0, -1)


def test_json_output_file():
    got = importers.parse_file(DATA / "alltoall.json")
    assert got.meta["op"] == "alltoall" and got.meta["nranks"] == 2 and got.rows[0]["root"] == -1
    assert got.rows[1]["wrong"] == -1 and got.rows[0]["busbw_GBps"] == 5.24


def test_text_that_is_not_nccl_tests_is_refused():
    with pytest.raises(NcbenchError, match="no nccl-tests result rows") as err:
        importers.parse_file(DATA / "not_nccl_tests.log")
    assert err.value.exit_code == 65


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "ncbench", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_import_command_writes_loadable_records(tmp_path):
    out = tmp_path / "imported.csv"
    done = _cli("import", DATA / "all_reduce_v2.19_2x2.log", DATA / "alltoall.json", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "6 rows of allreduce (nccl-tests 2.19.6, 4 ranks on 2 node(s))" in done.stdout
    frame = records.load(out)
    assert len(frame) == 8 and set(frame.op) == {"allreduce", "alltoall"}
    assert math.isnan(frame.time_us_p50[0]) and (frame.backend == "nccl").all()
    assert [s["source"] for s in records.load_meta(out)["sources"]] == ["all_reduce_v2.19_2x2.log", "alltoall.json"]


def test_import_command_refuses_foreign_text_with_65(tmp_path):
    done = _cli("import", DATA / "not_nccl_tests.log", "--out", tmp_path / "x.csv")
    assert done.returncode == 65 and "no nccl-tests result rows" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_import_of_a_missing_file_is_the_missing_input_code_66(tmp_path):
    done = _cli("import", tmp_path / "missing.log", "--out", tmp_path / "x.csv")
    assert done.returncode == 66 and "missing.log: no such file to import" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x.csv").exists()


def test_a_row_cut_at_the_end_of_the_file_is_not_trusted():
    head = "# Collective test starting: all_reduce_perf\n"
    row = "        1024           256     float     sum      -1    10.10    0.10    0.19       0    10.00    0.10    0.19       0"
    whole = importers.parse_text(head + row + "\n" + row.replace("1024", "2048", 1) + "\n")
    cut = importers.parse_text(head + row + "\n" + row.replace("1024", "2048", 1))  # no newline: output stopped
    assert len(whole.rows) == 4 and len(cut.rows) == 2 and "truncated" in cut.problems[0]
