"""What an nccl-tests log does not say: the op, the rank count, nodes. Inferred when the printed numbers
allow one answer, refused or left unknown otherwise, never guessed; --op/--ranks/--gpus-per-node fill in.

Logs come from tests/nccl_log.py, which prints known rows with nccl-tests' formulas and print formats
per era. The job*_no-device fixtures in tests/data/nccl-tests/ were written by it too (8 B to 8 GiB by 2x,
write_log(op, n, era=..., rng=random.Random(seed)) with a launcher line, NCCL INFO lines inside the table,
and for one an srun '0: ' prefix): 64 = 8 x 8, 16 = 2 x 8 and 24 = 3 x 8 ranks without '# Rank' lines.
"""

import json
import random
from pathlib import Path

import nccl_log
import pandas as pd
import pytest
from conftest import run_ncbench

from ncbench import importers, records
from ncbench.errors import NcbenchError
from ncbench.model import fit

DATA = Path(__file__).parent / "data" / "nccl-tests"
WITHOUT_DEVICES = {
    "job64_allreduce_8x8_v2.15.log": ("allreduce", 64),
    "job64_allgather_8x8_v2.19.log": ("allgather", 64),
    "job16_allreduce_2x8_v2.19.log": ("allreduce", 16),
    "job24_allreduce_3x8_v2.8.log": ("allreduce", 24),
}


def _random_log(seed: int):
    """Return (op, n, named, text) for one random job: era, op, rank count, sizes, dtype, speed, checks."""
    rng = random.Random(seed)
    op = rng.choice(list(nccl_log.OPS))
    era = rng.choice(
        nccl_log.ERAS if op in ("allreduce", "allgather", "reducescatter", "reduce") else nccl_log.ERAS[:3]
    )
    n = rng.choice([rng.randint(2, 4096), rng.randint(2, 64), 8 * rng.randint(1, 64)])
    named = rng.random() < 0.4
    top = 1 << rng.randint(10, 34)
    smallest = rng.choice([8, 1024, 1 << 20]) if top > 1 << 20 else 8
    text = nccl_log.write_log(
        op,
        n,
        era=era,
        rng=rng,
        named=named,
        max_bytes=top,
        min_bytes=smallest,
        dtype=rng.choice(list(nccl_log.TYPE_BYTES)),
        peak_GBps=rng.uniform(0.5, 400),
        latency_us=rng.uniform(2, 100),
        before_2020=era in ("2.8", "1") and op in ("allgather", "reducescatter") and rng.random() < 0.5,
        checked=rng.random() < 0.8,
    )
    return op, n, named and era in ("2.19", "2.15"), text


def test_property_rank_count_is_exact_or_an_interval_holding_it_and_the_op_is_never_wrong():
    exact = intervals = refused = 0
    for seed in range(400):
        op, n, named, text = _random_log(seed)
        try:
            m = importers.parse_text(text, "").meta
        except NcbenchError as err:
            assert not named and err.exit_code == 65 and "--op" in str(err), (seed, err)
            refused += 1
            continue
        assert m["op"] == op, (seed, m["op"], op, m.get("op_excluded"))
        if m["nranks"] == -1:
            lo, hi = m["nranks_interval"]
            assert lo <= n <= (hi or n), (seed, op, n, lo, hi)
            intervals += 1
        else:
            assert m["nranks"] == n, (seed, op, n, m["nranks"], m["nranks_from"])
            exact += 1
    assert exact > 150 and intervals > 100 and refused < 40  # the numbers decide often; refusals stay rare


@pytest.mark.parametrize("era", nccl_log.ERAS)
def test_rows_pin_allreduce_ranks_at_every_era(era):
    for n in (3, 7, 16, 24, 64, 96, 128):  # 2: busbw = algbw, as broadcast's; v1 then fits reducescatter too
        text = nccl_log.write_log("allreduce", n, era=era, rng=random.Random(n), named=False, peak_GBps=150.0)
        m = importers.parse_text(text, "").meta
        assert (m["op"], m["nranks"], m["op_from"]) == ("allreduce", n, "inferred"), (era, n, m)


@pytest.mark.parametrize("name", sorted(WITHOUT_DEVICES))
def test_jobs_without_device_lines_get_their_true_rank_count(name):
    op, ranks = WITHOUT_DEVICES[name]
    assert "device" not in (DATA / name).read_text()
    got = importers.parse_file(DATA / name)
    assert (got.meta["op"], got.meta["nranks"], got.meta["nnodes"]) == (op, ranks, -1)
    assert {row["nranks"] for row in got.rows} == {ranks} and max(row["nbytes"] for row in got.rows) == 8 << 30
    with_user = importers.parse_file(DATA / name, ranks=ranks, gpus_per_node=8)
    assert (with_user.meta["nnodes"], with_user.meta["ranks_per_node"]) == (ranks // 8, 8)
    assert with_user.meta["given_by_user"] == {"ranks": ranks, "gpus_per_node": 8}


def test_few_digits_give_an_interval_not_a_number():
    text = nccl_log.write_log("allreduce", 64, rng=random.Random(0), max_bytes=1 << 14, peak_GBps=1.0, named=False)
    m = importers.parse_text(text, "small.log").meta
    lo, hi = m["nranks_interval"]
    assert m["nranks"] == -1 and lo <= 64 <= hi and hi - lo >= 2
    line = importers.summary_lines(importers.parse_text(text, "small.log"))[0]
    assert f"ranks {lo}–{hi} (not stated in the log); pass --ranks" in line


def test_factor_one_ops_say_nothing_about_ranks():
    text = nccl_log.write_log("broadcast", 16, rng=random.Random(0), named=True)
    got = importers.parse_text(text, "")
    assert got.meta["nranks"] == -1 and got.meta["nranks_interval"] == [1, None]
    assert {r["nranks"] for r in got.rows} == {-1} and {r["nnodes"] for r in got.rows} == {-1}
    assert "ranks unknown (not stated in the log); pass --ranks" in importers.summary_lines(got)[0]


@pytest.mark.parametrize(
    ("op", "era"),
    [
        ("allreduce", "2.15"),
        ("reducescatter", "2.19"),
        ("allgather", "2.19"),
        ("alltoall", "2.19"),
        ("broadcast", "2.15"),
        ("reduce", "2.19"),
        ("sendrecv", "2.19"),
        ("allgather", "2.8"),
        ("alltoall", "2.8"),
        ("reducescatter", "2.8"),
        ("sendrecv", "2.8"),
    ],
)
def test_op_is_inferred_from_the_table(op, era):
    text = nccl_log.write_log(op, 16, era=era, rng=random.Random(1), named=False, peak_GBps=50.0)
    m = importers.parse_text(text, "pasted.txt").meta
    assert (m["op"], m["op_from"]) == (op, "inferred") and m["op_inferred_from"]
    assert set(m["op_excluded"]) == set(importers.CANDIDATES) - {op}


def test_what_rules_each_op_out_is_recorded():
    text = nccl_log.write_log("reducescatter", 8, rng=random.Random(2), named=False, peak_GBps=50.0)
    excluded = importers.parse_text(text, "").meta["op_excluded"]
    assert excluded["allreduce"] in ("count/size", "busbw/algbw")  # same redop and root: only the numbers differ
    assert excluded["allgather"] == "redop column" and excluded["reduce"] == "root column"
    text = nccl_log.write_log("sendrecv", 8, rng=random.Random(2), named=False)
    excluded = importers.parse_text(text, "").meta["op_excluded"]
    assert excluded["broadcast"] == "redop column" and excluded["reduce"] == "root column"


def test_two_possible_ops_are_named_and_nothing_is_guessed(tmp_path):
    text = nccl_log.write_log("allgather", 16, rng=random.Random(0), named=False, checked=False)  # -c 0: no N/A pattern
    with pytest.raises(NcbenchError, match="could be allgather or alltoall") as err:
        importers.parse_text(text, "ag.log")
    assert err.value.exit_code == 65 and "--op" in str(err.value)
    log = tmp_path / "ag.log"
    log.write_text(text)
    done = run_ncbench("import", log, "--out", tmp_path / "x.csv")
    assert done.returncode == 65 and done.stderr.count("\n") == 1 and "--op" in done.stderr
    done = run_ncbench("import", log, "--op", "allgather", "--out", tmp_path / "x.csv")
    assert done.returncode == 0 and "16 ranks" in done.stdout, done.stderr
    assert records.load_meta(tmp_path / "x.csv")["sources"][0]["given_by_user"] == {"op": "allgather"}


def test_a_rank_count_the_log_contradicts_is_refused(tmp_path):
    with pytest.raises(NcbenchError, match="device lines list 4 ranks, but --ranks 8") as err:
        importers.parse_file(DATA / "all_reduce_v2.19_2x2.log", ranks=8)
    assert err.value.exit_code == 65
    with pytest.raises(NcbenchError, match="place 2 ranks on each node, but --gpus-per-node 8"):
        importers.parse_file(DATA / "all_reduce_v2.19_2x2.log", gpus_per_node=8)
    with pytest.raises(NcbenchError, match="64 ranks; --ranks 16 contradicts them"):
        importers.parse_file(DATA / "job64_allreduce_8x8_v2.15.log", op="allreduce", ranks=16)
    with pytest.raises(NcbenchError, match="fit allreduce at 64 ranks, not --ranks 16"):
        importers.parse_file(DATA / "job64_allreduce_8x8_v2.15.log", ranks=16)
    done = run_ncbench("import", DATA / "all_reduce_v2.19_2x2.log", "--ranks", "8", "--out", tmp_path / "x.csv")
    assert done.returncode == 65 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_flags_that_cannot_be_right_are_usage_errors(tmp_path):
    for flags in (["--ranks", "0"], ["--ranks", "12", "--gpus-per-node", "8"], ["--op", "allsum"]):
        done = run_ncbench("import", DATA / "sendrecv_iter.log", *flags, "--out", tmp_path / "x.csv")
        assert done.returncode == 64 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, flags


def test_ranks_and_gpus_per_node_from_the_user_are_recorded_as_given(tmp_path):
    out = tmp_path / "s.csv"
    done = run_ncbench("import", DATA / "sendrecv_iter.log", "--ranks", "16", "--gpus-per-node", "8", "--out", out)
    assert done.returncode == 0 and "16 ranks (given) on 2 node(s)" in done.stdout, done.stderr
    frame = records.load(out)
    assert set(frame.nranks) == {16} and set(frame.nnodes) == {2} and set(frame.ranks_per_node) == {8}
    source = records.load_meta(out)["sources"][0]
    assert source["given_by_user"] == {"ranks": 16, "gpus_per_node": 8} and source["nranks_from"] == "--ranks"


def test_the_sidecar_keeps_the_interval_and_how_the_op_was_known(tmp_path):
    log = tmp_path / "pasted.txt"
    log.write_text(
        nccl_log.write_log("allreduce", 64, rng=random.Random(0), max_bytes=1 << 14, peak_GBps=1.0, named=False)
    )
    done = run_ncbench("import", log, "--out", tmp_path / "p.csv")
    assert done.returncode == 0 and "(not stated in the log); pass --ranks" in done.stdout, done.stderr
    source = json.loads((tmp_path / "p.json").read_text())["sources"][0]
    assert source["op_from"] == "inferred" and "redop column" in source["op_inferred_from"]
    assert source["nranks"] == -1 and source["nranks_interval"][0] <= 64 <= source["nranks_interval"][1]
    assert set(records.load(tmp_path / "p.csv").nranks) == {-1}


def test_a_directory_with_one_bad_file_imports_the_rest(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("all_reduce_v2.19_2x2.log", "job24_allreduce_3x8_v2.8.log", "not_nccl_tests.log"):
        (logs / name).write_bytes((DATA / name).read_bytes())
    done = run_ncbench("import", logs, "--out", tmp_path / "d.csv")
    assert done.returncode == 0, done.stderr
    reason = "no nccl-tests result rows found; is this the output of an nccl-tests *_perf binary?"
    assert done.stderr == f"ncbench: {logs / 'not_nccl_tests.log'}: {reason}\n"  # one sentence for the one bad file
    assert "from 2 of 3 files" in done.stdout and set(records.load(tmp_path / "d.csv").nranks) == {4, 24}
    done = run_ncbench("import", "logs/*.log", "--out", tmp_path / "g.csv", cwd=tmp_path)  # a quoted glob
    assert done.returncode == 0 and "from 2 of 3 files" in done.stdout, done.stderr


def test_a_directory_of_nothing_readable_fails_with_the_first_reason(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("backup finished\n")
    (logs / "b.log").write_text("Test NCCL failure common.cu:1279 'unhandled system error'\n")
    done = run_ncbench("import", logs, "--out", tmp_path / "x.csv")
    assert done.returncode == 65 and done.stderr.count("\n") == 2 and "Traceback" not in done.stderr
    assert (
        "the log reports: Test NCCL failure common.cu:1279 'unhandled" in done.stderr
        and not (tmp_path / "x.csv").exists()
    )
    done = run_ncbench("import", tmp_path / "nothing-*.log", "--out", tmp_path / "x.csv")
    assert done.returncode == 66 and "no files match" in done.stderr


def test_a_log_with_two_jobs_keeps_each_ones_scale():
    one = nccl_log.write_log("allreduce", 8, rng=random.Random(0), devices=8, max_bytes=1 << 24)
    two = nccl_log.write_log("allreduce", 16, rng=random.Random(1), devices=16, max_bytes=1 << 24)
    got = importers.parse_text(one + two, "two.log")
    assert [run["nranks"] for run in got.meta["runs"]] == [8, 16] and got.meta["nranks"] == -1
    assert sorted({r["nranks"] for r in got.rows}) == [8, 16] and len(importers.summary_lines(got)) == 2


def test_split_groups_count_the_ranks_of_rank_zeros_group():
    text = nccl_log.write_log("allreduce", 4, rng=random.Random(0), devices=8, per_node=4, max_bytes=1 << 24)
    text = "\n".join(
        line.replace("Group  0", "Group  1")
        if "Rank  4" in line or "Rank  5" in line or "Rank  6" in line or "Rank  7" in line
        else line
        for line in text.split("\n")
    )
    assert importers.parse_text(text, "split.log").meta["nranks"] == 4


def test_a_garbled_row_is_set_aside_for_the_inference():
    text = nccl_log.write_log("allreduce", 24, rng=random.Random(3), named=False, peak_GBps=80.0)
    lines = text.split("\n")
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("134217728"))
    tokens = lines[at].split()
    tokens[5] = "9.99"  # the time no longer matches size / algbw
    lines[at] = "  ".join(tokens)
    got = importers.parse_text("\n".join(lines), "")
    assert got.meta["nranks"] == 24 and any("disagree" in note for note in got.meta["notes"])


def test_fit_refuses_rows_of_unknown_scale_naming_the_run_and_the_flag():
    rows = importers.parse_file(DATA / "sendrecv_iter.log").rows
    frame = pd.DataFrame([{**importers.DEFAULTS, **row, "run_id": "pasted-import"} for row in rows])
    with pytest.raises(NcbenchError, match="run pasted-import have an unknown rank count") as err:
        fit.check_scale(frame)
    assert err.value.exit_code == 65 and "--ranks N (and --gpus-per-node G)" in str(err.value)
    with pytest.raises(NcbenchError, match=r"pasted-import \(results/x.csv\)"):
        fit.check_scale(frame, {"pasted-import": "results/x.csv"})
    from ncbench.model import topology

    with pytest.raises(NcbenchError, match="unknown rank count"):
        fit.fit(frame, topology.load(Path(__file__).parents[1] / "topologies" / "this-machine.toml"))
    fit.check_scale(frame.assign(nranks=16))  # a known scale passes


def test_an_nccl_log_line_inside_a_row_is_stepped_over():
    text = (DATA / "all_reduce_v2.19_2x2.log").read_text()
    row = "3.07       0   509.77"
    assert row in text
    for cut in (
        "3.07       0gpu-1-1:662195:662210 [0] NCCL INFO Connected all rings\n   509.77",
        "3.07       0\ngpu-1-1:662195:662210 [0] NCCL INFO Connected all rings\n   509.77",
    ):
        got = importers.parse_text(text.replace(row, cut), "x.log")
        assert len(got.rows) == 6 and got.problems == [] and got.rows[3]["time_us"] == 509.77


def test_interleaved_processes_never_give_a_wrong_rank_count():
    """A non-MPI build under mpirun: each process is its own 8-rank job, their lines mixed in one log."""
    first = nccl_log.write_log("allreduce", 8, rng=random.Random(0), devices=8, hosts="nodeA").split("\n")
    second = nccl_log.write_log("allreduce", 8, rng=random.Random(1), devices=8, hosts="nodeB").split("\n")
    for shift in range(0, 24, 3):
        mixed = first[:shift] + [line for pair in zip(first[shift:], second) for line in pair]
        got = importers.parse_text("\n".join(mixed) + "\n", "all_reduce_perf.log")
        assert {row["nranks"] for row in got.rows} <= {8, -1} and 8 in {row["nranks"] for row in got.rows}, shift


def test_a_cut_device_list_is_not_counted():
    text = nccl_log.write_log("broadcast", 16, rng=random.Random(0), devices=16)
    cut = "\n".join(line for line in text.split("\n") if "Rank 15" not in line and "Rank  3" not in line)
    got = importers.parse_text(cut, "broadcast_perf.log")
    assert got.meta["nranks"] == -1 and "cut or interleaved" in got.meta["notes"][0]


def test_a_header_after_rows_starts_another_table():
    one = nccl_log.write_log("allreduce", 8, rng=random.Random(0), named=False, preamble=False, peak_GBps=50.0)
    two = nccl_log.write_log("allreduce", 16, rng=random.Random(1), named=False, preamble=False, peak_GBps=50.0)
    got = importers.parse_text(one + two, "two-tables.txt")
    assert [run["nranks"] for run in got.meta["runs"]] == [8, 16]


def test_cputime_columns_are_not_used_as_the_time_algbw_came_from():
    text = nccl_log.write_log("allreduce", 32, rng=random.Random(0), named=False, peak_GBps=80.0)
    lines = text.split("\n")
    at = next(i for i, line in enumerate(lines) if "algbw" in line)
    lines[at] = lines[at].replace("   time", "cputime")
    for i in range(at + 1, len(lines)):  # -C: the enqueue time, far below the completion time
        tokens = lines[i].split()
        if len(tokens) == 13:
            tokens[5] = tokens[9] = "5.00"
            lines[i] = "  ".join(tokens)
    got = importers.parse_text("\n".join(lines), "")
    assert (got.meta["op"], got.meta["nranks"]) == ("allreduce", 32)
