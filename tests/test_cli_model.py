"""`ncbench topo show`, `fit` and `predict` as a user runs them: exit codes, files, no tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "results" / "runs"


def ncbench(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "ncbench", *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd)  # fmt: skip


def test_topo_show_prints_the_bill_of_materials():
    done = ncbench("topo", "show", "topologies/colossus-1m-2plane.toml", "--gpus", "1M")
    assert done.returncode == 0, done.stderr
    assert "39,066" in done.stdout and "network power" in done.stdout and "MW" in done.stdout


def test_topo_show_beyond_the_design_is_one_sentence_and_64_unless_extended():
    done = ncbench("topo", "show", "topologies/dgx-h100-superpod-ndr.toml", "--gpus", "1M")
    assert done.returncode == 64 and "Traceback" not in done.stderr and "--extend" in done.stderr
    assert ncbench("topo", "show", "topologies/dgx-h100-superpod-ndr.toml", "--gpus", "1M", "--extend").returncode == 0


def test_a_broken_topology_exits_65(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[tier]]\nname = "nvlink"\nsize = 8\n')
    done = ncbench("topo", "show", bad, "--gpus", "8")
    assert done.returncode == 65 and "missing bandwidth_GBps" in done.stderr and "Traceback" not in done.stderr


def test_fit_then_predict_on_this_machines_runs(tmp_path):
    fitted = tmp_path / "this-machine.fitted.toml"
    done = ncbench("fit", RUNS, "--topology", "topologies/this-machine.toml", "--op", "allreduce", "--out", fitted)
    assert done.returncode == 0, done.stderr
    assert "constrained" in done.stdout and fitted.exists()
    out = tmp_path / "p.json"
    done = ncbench("predict", "--topology", fitted, "--op", "allreduce", "--gpus", "2,4", "--bytes", "8,1M",
                   "--algo", "ring", "--format", "json", "--out", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [r for r in json.loads(out.read_text()) if r["op"] == "allreduce"]
    assert len(rows) == 4 and all(r["time_us_low"] <= r["time_us"] <= r["time_us_high"] for r in rows)


def test_predict_default_sweep_covers_every_shipped_topology(tmp_path):
    done = ncbench("predict", "--format", "csv", "--out", tmp_path / "all.csv")
    assert done.returncode == 0, done.stderr
    import pandas as pd

    frame = pd.read_csv(tmp_path / "all.csv")
    shipped = [p for p in (ROOT / "topologies").glob("*.toml") if not p.name.endswith(".fitted.toml")]
    assert frame.topology.nunique() == len(shipped)
    assert {200_000, 1_000_000} <= set(frame.gpus) and {"init", "mtbf", "alltoall"} <= set(frame.op)


def test_predict_rejects_an_unknown_op():
    done = ncbench("predict", "--op", "allreduse", "--topology", "topologies/this-machine.toml")
    assert done.returncode == 64 and "unknown op" in done.stderr


def test_extrapolation_script_judges_every_published_curve():
    done = subprocess.run([sys.executable, "scripts/extrapolate.py", "results/published/published.csv"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Summit" in done.stdout and "init" in done.stdout
    assert "predictions: median |error|" in done.stdout


def test_predict_rejects_an_unknown_algorithm():
    done = ncbench("predict", "--algo", "ring,bogus", "--topology", "topologies/this-machine.toml", "--gpus", "4")
    assert done.returncode == 64 and "unknown algorithm 'bogus'" in done.stderr
