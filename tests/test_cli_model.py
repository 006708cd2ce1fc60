"""`ncbench topo show`, `fit` and `predict` as a user runs them: exit codes, files, no tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_ncbench

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "results" / "runs"


def test_topo_show_prints_the_bill_of_materials():
    done = run_ncbench("topo", "show", "topologies/colossus-1m-2plane.toml", "--gpus", "1M")
    assert done.returncode == 0, done.stderr
    assert "39,066" in done.stdout and "network power" in done.stdout and "MW" in done.stdout


def test_topo_show_beyond_the_design_is_one_sentence_and_64_unless_extended():
    done = run_ncbench("topo", "show", "topologies/dgx-h100-superpod-ndr.toml", "--gpus", "1M")
    assert done.returncode == 64 and "Traceback" not in done.stderr and "--extend" in done.stderr
    assert (
        run_ncbench("topo", "show", "topologies/dgx-h100-superpod-ndr.toml", "--gpus", "1M", "--extend").returncode == 0
    )


def test_a_broken_topology_exits_65(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[tier]]\nname = "nvlink"\nsize = 8\n')
    done = run_ncbench("topo", "show", bad, "--gpus", "8")
    assert done.returncode == 65 and "missing bandwidth_GBps" in done.stderr and "Traceback" not in done.stderr


def test_fit_then_predict_on_this_machines_runs(tmp_path, committed_runs):
    fitted = tmp_path / "this-machine.fitted.toml"
    done = run_ncbench(
        "fit", committed_runs, "--topology", "topologies/this-machine.toml", "--op", "allreduce", "--out", fitted
    )
    assert done.returncode == 0, done.stderr
    assert "constrained" in done.stdout and fitted.exists()
    out = tmp_path / "p.json"
    done = run_ncbench(
        "predict",
        "--topology",
        fitted,
        "--op",
        "allreduce",
        "--gpus",
        "2,4",
        "--bytes",
        "8,1M",
        "--algo",
        "ring",
        "--format",
        "json",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    rows = [r for r in json.loads(out.read_text()) if r["op"] == "allreduce"]
    assert len(rows) == 4 and all(r["time_us_low"] <= r["time_us"] <= r["time_us_high"] for r in rows)


def test_predict_default_sweep_covers_every_shipped_topology(tmp_path):
    done = run_ncbench("predict", "--format", "csv", "--out", tmp_path / "all.csv")
    assert done.returncode == 0, done.stderr
    import pandas as pd

    frame = pd.read_csv(tmp_path / "all.csv")
    shipped = [p for p in (ROOT / "topologies").glob("*.toml") if not p.name.endswith(".fitted.toml")]
    assert frame.topology.nunique() == len(shipped)
    assert {200_000, 1_000_000} <= set(frame.gpus) and {"init", "mtbf", "alltoall"} <= set(frame.op)


def test_predict_rejects_an_unknown_op():
    done = run_ncbench("predict", "--op", "allreduse", "--topology", "topologies/this-machine.toml")
    assert done.returncode == 64 and "unknown op" in done.stderr


def test_extrapolation_script_judges_every_published_curve():
    done = subprocess.run(
        [sys.executable, "scripts/extrapolate.py", "results/published/published.csv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Summit" in done.stdout and "init" in done.stdout
    assert "predictions: median |error|" in done.stdout
    # and the shipped designs, unfitted, against every curve of a system they model: over scale or size
    designs = done.stdout.split("shipped designs as they are")[1]
    assert "summit-edr allreduce ring" in designs and "alibaba-hpn-dualplane allgather" in designs
    assert designs.count("448 GPUs") == 12 and "points of shipped designs: median |error|" in designs
    # Frontier's RCCL times at 2,048 GCDs (time_ms, "RCCL default": the tuner's pick) against frontier-slingshot
    assert "frontier-slingshot allreduce auto time_ms" in designs and designs.count("2048 GPUs") == 5


def test_predict_rejects_an_unknown_algorithm():
    done = run_ncbench("predict", "--algo", "ring,bogus", "--topology", "topologies/this-machine.toml", "--gpus", "4")
    assert done.returncode == 64 and "unknown algorithm 'bogus'" in done.stderr


SHIPPED = sorted((ROOT / "topologies").glob("*.toml"))
SIZES = {"0": 0, "8": 8, "1G": 1 << 30, "16G": 16 << 30}


def predict_in_process(capfd, *args):
    """Run `ncbench predict ARGS` in this process: (exit code, stdout, stderr); an uncaught exception propagates."""
    from ncbench.cli import Outcome, main

    Outcome.code = 0  # the exit code an earlier in-process command chose (compare's 2) must not carry over
    with pytest.raises(SystemExit) as done:
        main(["predict", *map(str, args)])
    out = capfd.readouterr()
    return done.value.code, out.out, out.err


def _strict_json(text):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _answered_sizes(fmt: str, text: str) -> set[int]:
    """Return the sizes (bytes) a prediction's output answers for, read back in its own format."""
    if fmt == "json":
        return {r["bytes"] for r in _strict_json(text) if r["op"] not in ("init", "mtbf")}
    if fmt == "csv":
        import io

        import pandas as pd

        frame = pd.read_csv(io.StringIO(text))
        return set(frame.loc[~frame.op.isin(["init", "mtbf"]), "bytes"].astype(int))
    assert "<NA>" not in text and " nan " not in text.lower(), text
    return {int(line.split()[5]) for line in text.splitlines()[1:] if line.split()[1] not in ("init", "mtbf")}


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
@pytest.mark.parametrize("design", SHIPPED, ids=lambda p: p.stem)
def test_predict_answers_every_shipped_design_in_every_format_or_says_why_not(capfd, design, fmt):
    for gpus in ("1", "8", "1M", "10M"):
        code, out, err = predict_in_process(
            capfd, "--topology", design, "--gpus", gpus, "--bytes", ",".join(SIZES), "--format", fmt
        )
        assert "Traceback" not in err, err
        if code == 0:
            assert _answered_sizes(fmt, out) == set(SIZES.values()), (gpus, out[:500])
        else:
            assert code in (64, 65, 66) and err.startswith("ncbench: ") and err.count("\n") == 1, (gpus, code, err)


def test_predict_table_marks_the_tiers_init_and_mtbf_rows_lack_with_a_dash():
    from ncbench.model import predict, topology

    design = topology.load(ROOT / "topologies" / "colossus-1m-4tier.toml")
    text = predict.render(predict.scale_costs(design, [1_000_000]), "table")
    rows = text.splitlines()[1:]
    assert [r.split()[1] for r in rows] == ["init", "mtbf"] and all(r.endswith(" -") for r in rows), text


def test_fit_leaves_out_with_a_note_the_runs_beyond_its_topology_and_refuses_when_none_is_left(
    tmp_path, committed_runs
):
    import shutil

    from test_report import ALLGATHER, eight_rank_run

    runs = tmp_path / "runs"
    shutil.copytree(committed_runs, runs)
    eight_rank_run(runs)
    fitted = tmp_path / "f.toml"
    done = run_ncbench("fit", runs, "--topology", "topologies/this-machine.toml", "--op", "allgather", "--out", fitted)
    assert done.returncode == 0, done.stderr
    note = (
        f"ncbench fit: left out: this-machine cannot connect the run x in {runs / 'x.csv'} "
        "(8 ranks at 1 per node; at most 4)\n"
    )
    assert done.stderr.endswith(note) and note not in done.stderr[: -len(note)]  # one line; progress may precede it
    assert f'runs = ["{ALLGATHER}"]' in fitted.read_text()  # what it was fitted to, by run id
    alone = tmp_path / "alone"
    alone.mkdir()
    eight_rank_run(alone)
    done = run_ncbench("fit", alone, "--topology", "topologies/this-machine.toml", "--out", tmp_path / "g.toml")
    assert done.returncode == 65 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "nothing left to fit: topologies/this-machine.toml" in done.stderr and str(alone / "x.csv") in done.stderr
    assert not (tmp_path / "g.toml").exists()


def test_a_fitted_topology_accepts_a_copy_of_its_results_in_another_folder(tmp_path, committed_runs):
    import shutil

    import pytest
    from test_report import copy_run

    from ncbench import report
    from ncbench.errors import NcbenchError

    first, copy, other = tmp_path / "first", tmp_path / "copy", tmp_path / "other"
    shutil.copytree(committed_runs, first)
    fitted = tmp_path / "f.toml"
    done = run_ncbench("fit", first, "--topology", "topologies/this-machine.toml", "--op", "allreduce", "--out", fitted)
    assert done.returncode == 0, done.stderr
    shutil.copytree(first, copy)
    shutil.rmtree(first)  # the folder it was fitted in is gone: only the run ids can tell
    inputs = report.gather([copy], topologies=[fitted])
    assert not inputs.modelled[fitted].left_out  # every run within the topology
    other.mkdir()
    copy_run(RUNS / "20261123T123944Z-vm-allreduce-mpi-11815", other / "y.csv", run_id="someone-else")
    with pytest.raises(NcbenchError, match=f"{fitted} was fitted to {first}, not to these results: none of its runs"):
        report.gather([other], topologies=[fitted])


def test_a_failures_table_without_its_rate_is_refused_when_loaded_not_a_crash_in_predict(tmp_path):
    text = (ROOT / "topologies" / "this-machine.toml").read_text()
    bad = tmp_path / "no-rate.toml"
    bad.write_text(text + '\n[failures]\nsource = "a test"\nper_gpu_per_day_low = 1e-4\n')
    done = run_ncbench("predict", "--topology", bad, "--gpus", "8", "--bytes", "8")
    assert done.returncode == 65 and "[failures] needs per_gpu_per_day" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
