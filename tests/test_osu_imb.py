"""Real OSU micro-benchmarks and IMB-MPI1 output (tests/data/osu, tests/data/imb) become ncbench records.

Every committed file is parsed: ops, rank counts, row counts, sizes mapped to ncbench's convention, each tool's
statistic named, -f columns in time_us_min/max, IMB's benchmark x #processes blocks apart; garbage is refused.
"""

import math
import re
from pathlib import Path

import pytest
from conftest import run_ncbench

from ncbench import ops, osu_imb
from ncbench.errors import NcbenchError
from ncbench.importers import Imported
from ncbench.measure import p2p
from ncbench.records import RESULT_COLUMNS

DATA = Path(__file__).parent / "data"
OSU_FILES = sorted((DATA / "osu").glob("*.txt"))
IMB_FILES = sorted((DATA / "imb").glob("*.txt"))
OSU_OPS = {
    "latency": "latency",
    "bw": "bw",
    "bibw": "bibw",
    "allreduce": "allreduce",
    "allgather": "allgather",
    "reduce_scatter": "reducescatter",
    "bcast": "broadcast",
    "alltoall": "alltoall",
}
NAME = re.compile(r"osu-(?P<version>[\d.]+)_(?P<bench>[a-z_]+?)_n(?P<n>\d)(?P<extra>_.*)?\.txt")
COLUMNS = set(RESULT_COLUMNS) - {"run_id"}  # run_id is given when the import is written


def printed_sizes(text: str) -> list[int]:
    """The first column of every data line, read without the parser."""
    return [int(line.split()[0]) for line in text.splitlines() if line.strip()[:1].isdigit()]


def test_the_committed_outputs_cover_every_benchmark_version_and_rank_count():
    seen = {(m["version"], m["bench"], m["n"]) for m in (NAME.match(p.name) for p in OSU_FILES)}
    for version in ("5.3", "6.2", "7.2", "7.4"):
        for bench in OSU_OPS:
            for n in ("2",) if bench in ("latency", "bw", "bibw") else ("2", "4"):
                assert (version, bench, n) in seen
    versions = {p.name.split("_")[0] for p in IMB_FILES}
    assert versions == {"imb-2018u1", "imb-2019u6", "imb-2021.11"} and len(IMB_FILES) == 6
    assert (DATA / "osu" / "README.md").is_file() and (DATA / "imb" / "README.md").is_file()


@pytest.mark.parametrize("path", OSU_FILES, ids=lambda p: p.name)
def test_every_osu_output_parses(path):
    text = path.read_text()
    name = NAME.match(path.name)
    n, op = int(name["n"]), OSU_OPS[name["bench"]]
    assert osu_imb.looks_like_osu(text) and not osu_imb.looks_like_imb(text)
    got = osu_imb.parse_osu(text, path.name)
    assert isinstance(got, Imported) and got.problems == []
    assert (got.meta["op"], got.meta["nranks"], got.meta["osu_version"]) == (op, n, name["version"])
    assert got.meta["benchmark"] == f"osu_{name['bench']}" and got.meta["backend"] == "mpi"
    printed = printed_sizes(text)
    assert len(got.rows) == len(printed) > 0
    scale = n if op in ("allgather", "alltoall") else 1  # OSU prints one rank's block for these two
    assert [r["nbytes"] for r in got.rows] == [size * scale for size in printed]
    for row in got.rows:
        assert set(row) == COLUMNS
        assert (row["op"], row["nranks"], row["nnodes"], row["samples"]) == (op, n, -1, 1)
        assert row["timing"] == got.meta["statistic"] and row["timing"].startswith(f"OSU osu_{name['bench']}")
        assert row["time_us"] > 0 and row["wrong"] in (-1, 0)
        if op not in p2p.TESTS:
            factor = ops.OPS[op].busbw_factor(n)
            assert row["busbw_GBps"] == pytest.approx(row["algbw_GBps"] * factor)
            assert row["algbw_GBps"] == pytest.approx(row["nbytes"] / row["time_us"] / 1e3)


@pytest.mark.parametrize("path", [p for p in OSU_FILES if "_full" in p.name], ids=lambda p: p.name)
def test_full_statistics_fill_min_max_and_iterations(path):
    got = osu_imb.parse_osu(path.read_text(), path.name)
    assert got.meta["full"] and "fastest and slowest rank" in got.meta["statistic"]
    for row in got.rows:
        assert row["time_us_min"] <= row["time_us"] + 0.01 and row["time_us"] <= row["time_us_max"] + 0.01
        assert row["iters"] in (100, 1000)  # OSU's defaults: 1000 iterations, 100 above 8 KiB
    assert {r["iters"] for r in got.rows} == ({1000} if "alltypes" in path.name else {100, 1000})  # -m 4096


def test_plain_output_leaves_min_max_unknown():
    got = osu_imb.parse_osu((DATA / "osu" / "osu-7.4_allreduce_n4.txt").read_text(), "osu-7.4_allreduce_n4.txt")
    assert not got.meta["full"] and "averaged over the ranks" in got.meta["statistic"]
    assert all(r["time_us_min"] is None and r["time_us_max"] is None and r["iters"] == -1 for r in got.rows)


def osu(name: str, **kwargs) -> Imported:
    return osu_imb.parse_osu((DATA / "osu" / name).read_text(), name, **kwargs)


def test_osu_sizes_become_the_larger_buffer_per_rank():
    gather, alltoall = osu("osu-7.4_allgather_n4.txt").rows, osu("osu-5.3_alltoall_n4_full.txt").rows
    assert (gather[0]["nbytes"], gather[0]["count"], gather[-1]["nbytes"]) == (4, 1, 4 * 65536)  # recv = 4 blocks
    assert (alltoall[0]["nbytes"], alltoall[0]["count"]) == (4, 1)
    scatter = osu("osu-5.3_reduce_scatter_n4.txt").rows[-1]  # the whole send buffer, floats, split 4 ways
    assert (scatter["nbytes"], scatter["count"], scatter["dtype"], scatter["redop"]) == (65536, 4096, "float", "sum")
    scatter7 = osu("osu-7.4_reduce_scatter_n4.txt").rows[-1]  # 7.x: MPI_CHAR
    assert (scatter7["nbytes"], scatter7["count"], scatter7["dtype"]) == (65536, 16384, "int8")
    reduce, bcast = osu("osu-6.2_allreduce_n2.txt").rows[0], osu("osu-6.2_bcast_n4.txt").rows[-1]
    assert (reduce["nbytes"], reduce["count"], reduce["dtype"]) == (4, 1, "float")
    assert (bcast["nbytes"], bcast["count"], bcast["root"]) == (65536, 65536, 0)
    assert bcast["busbw_GBps"] == bcast["algbw_GBps"]  # broadcast's factor is 1
    assert "nranks x the printed size" in osu("osu-7.4_alltoall_n2.txt").meta["size_mapping"]


def test_osu_pt2pt_rows_look_like_ncbench_p2p_rows():
    latency, bw, bibw = osu("osu-7.4_latency_n2.txt"), osu("osu-7.4_bw_n2.txt"), osu("osu-7.4_bibw_n2.txt")
    assert {latency.meta["op"], bw.meta["op"], bibw.meta["op"]} == set(p2p.TESTS)
    for row in latency.rows + bw.rows + bibw.rows:
        assert (row["peer_a"], row["peer_b"], row["nranks"], row["dtype"]) == (0, 1, 2, "uint8")
        assert row["busbw_GBps"] == row["algbw_GBps"]
    assert "half the round trip" in latency.meta["statistic"]
    text = (DATA / "osu" / "osu-7.4_bw_n2.txt").read_text()
    bandwidth_MBps = float(text.strip().splitlines()[-1].split()[1])  # the 64 KiB row
    assert bw.rows[-1]["algbw_GBps"] == pytest.approx(bandwidth_MBps / 1e3)
    assert bw.rows[-1]["time_us"] == pytest.approx(65536 / bandwidth_MBps)  # per message
    assert bibw.rows[-1]["time_us"] == pytest.approx(2 * 65536 / (bibw.rows[-1]["algbw_GBps"] * 1e3))
    assert osu("osu-5.3_latency_n2.txt").rows[0]["nbytes"] == 0  # 5.3 ran with its defaults: 0 B to 4 MiB
    assert osu("osu-7.2_bibw_n2.txt").problems == []  # 7.2 prints the datatype after the header


def test_osu_7_datatype_tables_tail_latencies_and_validation():
    alltypes = osu("osu-7.4_allreduce_n4_full_alltypes.txt")
    assert alltypes.meta["dtypes"] == ["float", "int32", "int8"]
    by_type = {t: [r for r in alltypes.rows if r["dtype"] == t] for t in alltypes.meta["dtypes"]}
    assert [len(by_type[t]) for t in ("int8", "int32", "float")] == [13, 11, 11]  # 1..4096 B, 4..4096 B
    assert all(r["count"] * ops.DTYPES[r["dtype"]].size == r["nbytes"] for r in alltypes.rows)
    tail = osu("osu-7.4_allreduce_n4_full_tail.txt")
    assert tail.meta["tail"] and all(r["time_us_p50"] > 0 and r["time_us_p99"] >= r["time_us_p50"] for r in tail.rows)
    assert "percentiles over iterations" in tail.rows[0]["timing"]
    for name in ("osu-6.2_allreduce_n2_validate.txt", "osu-7.4_allreduce_n2_validate.txt"):
        got = osu(name)
        assert got.meta["validated"] and {r["wrong"] for r in got.rows} == {0}
    text = (DATA / "osu" / "osu-6.2_allreduce_n2_validate.txt").read_text().replace("Pass", "Fail", 1)
    failed = osu_imb.parse_osu(text, "osu_allreduce_n2.txt")
    assert failed.rows[0]["wrong"] == 1 and "Fail" in failed.problems[0]


def test_osu_rank_count_from_the_caller_or_the_name():
    text = (DATA / "osu" / "osu-7.4_bcast_n4.txt").read_text()
    assert osu_imb.parse_osu(text, "bcast-np8.log").meta["nranks"] == 8
    assert osu_imb.parse_osu(text, "anything.log", nranks=16).rows[0]["nranks"] == 16
    unknown = osu_imb.parse_osu(text, "bcast.log")
    assert unknown.meta["nranks"] == -1 and math.isnan(unknown.rows[0]["busbw_GBps"]) and unknown.problems
    with pytest.raises(NcbenchError, match="rank count") as err:  # allgather's sizes need it
        osu_imb.parse_osu((DATA / "osu" / "osu-7.4_allgather_n4.txt").read_text(), "allgather.log")
    assert err.value.exit_code == 65


def test_osu_truncation_and_launcher_prefixes():
    text = (DATA / "osu" / "osu-6.2_alltoall_n4_full.txt").read_text()
    cut = text[: text.rindex("\n", 0, len(text) - 1) + 12]  # stops 11 characters into the last row
    got = osu_imb.parse_osu(cut, "osu_alltoall_n4.log")
    assert len(got.rows) == len(printed_sizes(text)) - 1 and "truncated" in got.problems[0]
    tagged = "".join(f"[1,0]<stdout>:{line}\n" for line in text.splitlines())
    assert osu_imb.parse_osu(tagged, "osu_alltoall_n4.log").rows == osu_imb.parse_osu(text, "x_n4").rows


def imb(name: str) -> list[Imported]:
    return osu_imb.parse_imb((DATA / "imb" / name).read_text(), name)


@pytest.mark.parametrize("path", IMB_FILES, ids=lambda p: p.name)
def test_every_imb_output_parses_into_its_blocks(path):
    text = path.read_text()
    assert osu_imb.looks_like_imb(text) and not osu_imb.looks_like_osu(text)
    blocks = osu_imb.parse_imb(text, path.name)
    n = int(path.name.rsplit("_n", 1)[1][0])
    expected = [(b, k) for b in osu_imb.IMB_BENCHMARKS for k in range(2, n + 1, 2) if b != "PingPong" or k == 2]
    assert [(b.meta["benchmark"], b.meta["nranks"]) for b in blocks] == expected
    headers = [m.group(1) for m in re.finditer(r"# Benchmarking (\S+)", text)]
    assert len(blocks) == len(headers)
    for block in blocks:
        assert block.problems == [] and block.meta["tool"] == "IMB" and block.meta["calling_sequence"]
        assert block.meta["idle_ranks"] == n - block.meta["nranks"]
        floats = block.meta["op"] in ("allreduce", "reducescatter")  # no 1 and 2 B rows
        assert len(block.rows) == (16 if floats else 18)
        for row in block.rows:
            assert set(row) == COLUMNS and row["timing"] == block.meta["statistic"]
            assert row["iters"] > 0 and row["nranks"] == block.meta["nranks"]
            if block.meta["benchmark"] == "PingPong":
                assert (row["op"], row["peer_a"], row["peer_b"], row["time_us_max"]) == ("latency", 0, 1, None)
            else:
                assert row["time_us_min"] <= row["time_us"] <= row["time_us_max"]
                factor = ops.OPS[row["op"]].busbw_factor(row["nranks"])
                assert row["busbw_GBps"] == pytest.approx(row["algbw_GBps"] * factor)


def test_imb_statistics_are_named_for_what_they_are():
    blocks = imb("imb-2021.11_mpi1_n4.txt")
    pingpong, allreduce = blocks[0], blocks[3]
    assert "half the round trip" in pingpong.meta["statistic"] and pingpong.meta["idle_ranks"] == 2
    assert allreduce.meta["statistic"].startswith("IMB Allreduce t_avg")
    assert "t_min/t_max" in allreduce.meta["statistic"]
    text = (DATA / "imb" / "imb-2021.11_mpi1_n4.txt").read_text()
    last_alltoall = [line for line in text.splitlines() if line.strip()[:1].isdigit()][-1].split()  # bytes reps t_min..
    row = blocks[-1].rows[-1]
    assert (row["time_us_min"], row["time_us_max"], row["time_us"]) == tuple(map(float, last_alltoall[2:5]))
    assert blocks[0].meta["imb_version"] == "2021.11"
    assert imb("imb-2018u1_mpi1_n2.txt")[0].meta["imb_version"] == "2018 Update 1"


def test_imb_sizes_become_the_larger_buffer_per_rank():
    def block(name, benchmark, nranks):
        return next(b for b in imb(name) if (b.meta["benchmark"], b.meta["nranks"]) == (benchmark, nranks))

    new, old = "imb-2021.11_mpi1_n4.txt", "imb-2018u1_mpi1_n4.txt"
    for benchmark in ("Allgather", "Alltoall"):  # #bytes is one rank's block
        row = block(new, benchmark, 4).rows[-1]
        assert (row["nbytes"], row["count"], row["dtype"]) == (4 * 65536, 65536, "uint8")
    scatter = block(new, "Reduce_scatter", 4).rows[-1]  # 2019 Update 2+: #bytes each rank receives
    assert (scatter["nbytes"], scatter["count"], scatter["dtype"]) == (4 * 65536, 16384, "float")
    assert block("imb-2019u6_mpi1_n4.txt", "Reduce_scatter", 2).rows[-1]["nbytes"] == 2 * 65536
    scatter_2018 = block(old, "Reduce_scatter", 4)  # 2018: #bytes is the whole send buffer
    assert (scatter_2018.rows[-1]["nbytes"], scatter_2018.rows[-1]["count"]) == (65536, 4096)
    assert "split among the ranks" in scatter_2018.meta["size_mapping"]
    for benchmark in ("Allreduce", "Bcast", "Sendrecv", "PingPong"):
        assert block(new, benchmark, 2).rows[-1]["nbytes"] == 65536
    assert block(new, "Bcast", 4).rows[0]["root"] == 0 and block(new, "Allreduce", 4).rows[0]["redop"] == "sum"
    assert block(new, "Sendrecv", 4).rows[0]["op"] == "sendrecv"


def test_imb_blocks_ncbench_does_not_import_and_cut_output():
    text = (DATA / "imb" / "imb-2021.11_mpi1_n2.txt").read_text()
    barrier = "\n#----\n# Benchmarking Barrier \n# #processes = 2 \n#----\n #repetitions  t_min[usec]\n 1000 0.5\n"
    got = osu_imb.parse_imb(text + barrier, "imb.log")
    assert len(got) == 7 and "Barrier" in got[0].problems[-1]
    cut = text[: text.index("       65536", text.index("Benchmarking Alltoall")) + 20]
    got = osu_imb.parse_imb(cut, "imb.log")
    assert len(got[-1].rows) == 17 and "truncated" in got[-1].problems[0]
    failed = text.replace("        65536          640", "        65536  out-of-mem.; needed X=  1.000 GB; use", 1)
    pingpong = osu_imb.parse_imb(failed, "imb.log")[0]
    assert len(pingpong.rows) == 17 and "could not measure" in pingpong.problems[0]


GARBAGE = [
    "",
    "hello\nworld\n",
    "# OSU MPI Allreduce Latency Test v7.4\n# Size  Avg Latency(us)\n",
    (DATA / "nccl-tests" / "all_reduce_v2.19_2x2.log").read_text(),
]


@pytest.mark.parametrize("text", GARBAGE, ids=["empty", "words", "osu-title-only", "nccl-tests"])
def test_garbage_is_refused_in_one_sentence(text):
    for parse in (osu_imb.parse_osu, osu_imb.parse_imb):
        with pytest.raises(NcbenchError) as err:
            parse(text, "x_n4.log")
        assert err.value.exit_code == 65 and "\n" not in str(err.value) and str(err.value).startswith("x_n4.log: ")
    if "OSU" not in text:
        assert not osu_imb.looks_like_osu(text) and not osu_imb.looks_like_imb(text)


def test_osu_files_ncbench_cannot_read_are_refused():
    allreduce = (DATA / "osu" / "osu-7.4_allreduce_n2.txt").read_text()
    bcast = (DATA / "osu" / "osu-7.4_bcast_n2.txt").read_text()
    mbw = "# OSU MPI Multiple Bandwidth / Message Rate Test v7.4\n# Size  MB/s  Messages/s\n1  2.0  2000000\n"
    for text, why in (
        (allreduce + bcast, "several OSU benchmarks"),
        (mbw, "not a benchmark ncbench imports"),
        (allreduce.replace("MPI_CHAR", "MPI_COMPLEX"), "datatype"),
        (allreduce.replace("# Size", "# Bytes"), "no osu_allreduce result rows"),
    ):
        with pytest.raises(NcbenchError, match=why) as err:
            osu_imb.parse_osu(text, "x_n2.log")
        assert err.value.exit_code == 65
    only_barrier = "# Benchmarking Barrier\n# #processes = 2\n #repetitions t_min[usec]\n 1000 0.5\n"
    with pytest.raises(NcbenchError, match="no IMB-MPI1 result rows"):
        osu_imb.parse_imb(only_barrier, "x.log")


# ------------------------------------------------------------------------------------------- through the CLI


def test_import_reads_osu_and_imb_outputs_beside_nccl_tests_logs(tmp_path):
    from ncbench import records

    root = Path(__file__).resolve().parent
    imb = root / "data" / "imb" / "imb-2021.11_mpi1_n4.txt"
    osu = root / "data" / "osu" / "osu-7.4_allreduce_n4.txt"
    done = run_ncbench("import", imb, osu, "--out", tmp_path / "x.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        "rows of alltoall (IMB 2021.11, 4 ranks" in done.stdout and "rows of allreduce (OSU 7.4, 4 ranks" in done.stdout
    )
    frame = records.load(tmp_path / "x.csv")
    assert frame["timing"].str.startswith(("IMB", "OSU")).all() and set(frame["op"]) >= {"latency", "allreduce"}
    whole = run_ncbench("import", root / "data" / "osu", "--out", tmp_path / "all.csv", cwd=tmp_path)
    assert whole.returncode == 0 and whole.stderr.count("ncbench: ") == 1  # its README.md is refused, alone


def test_compare_refuses_to_set_an_osu_average_against_an_ncbench_slowest_rank(tmp_path):
    from ncbench import records

    root = Path(__file__).resolve().parent
    osu = tmp_path / "osu.csv"
    assert (
        run_ncbench("import", root / "data" / "osu" / "osu-7.4_allreduce_n4.txt", "--out", osu, cwd=tmp_path).returncode
        == 0
    )
    frame = records.load(osu)
    mine = tmp_path / "mine.csv"
    frame.assign(timing="host", run_id="mine").to_csv(mine, index=False)  # the same measurements, ncbench's statistic
    done = run_ncbench("compare", osu, mine, cwd=tmp_path)
    assert done.returncode == 65 and "report different statistics of them" in done.stderr, done.stderr
