"""One rule for every file ncbench writes: what exists is refused in one sentence (exit 64), --force replaces it."""

import shutil

import pytest
from conftest import ROOT, requires_mpi, run_mpi, run_ncbench

RULE = "is never overwritten without --force"


def test_fit_refuses_to_replace_the_fitted_topology_before_any_work_and_force_replaces_it(tmp_path, committed_runs):
    shutil.copy(ROOT / "topologies" / "this-machine.toml", tmp_path / "this-machine.toml")
    fitted = tmp_path / "this-machine.fitted.toml"  # the default target, as `ncbench fit` in the README had it
    fitted.write_text("precious\n")
    args = ("fit", committed_runs, "--topology", tmp_path / "this-machine.toml", "--op", "allreduce")
    refused = run_ncbench(*args)
    assert refused.returncode == 64 and RULE in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert fitted.read_text() == "precious\n"
    forced = run_ncbench(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert fitted.read_text().startswith(("name", "#", "[")) and "precious" not in fitted.read_text()


def test_predict_out_refuses_an_existing_file_and_force_replaces_it(tmp_path):
    out = tmp_path / "p.json"
    out.write_text("precious\n")
    args = (
        "predict",
        "--topology",
        "topologies/this-machine.toml",
        "--op",
        "allreduce",
        "--gpus",
        "8",
        "--bytes",
        "1M",
        "--format",
        "json",
        "--out",
        out,
    )
    refused = run_ncbench(*args)
    assert refused.returncode == 64 and RULE in refused.stderr and out.read_text() == "precious\n"
    assert run_ncbench(*args, "--force").returncode == 0 and '"op": "allreduce"' in out.read_text()


def test_import_out_refuses_an_existing_file_and_force_replaces_it(tmp_path):
    out = tmp_path / "x.csv"
    out.write_text("precious\n")
    log = ROOT / "tests" / "data" / "nccl-tests" / "all_reduce_v2.19_2x2.log"
    refused = run_ncbench("import", log, "--out", out)
    assert refused.returncode == 64 and RULE in refused.stderr and out.read_text() == "precious\n"
    forced = run_ncbench("import", log, "--out", out, "--force")
    assert forced.returncode == 0 and "wrote 6 rows" in forced.stdout and out.with_suffix(".json").exists()


@requires_mpi
@pytest.mark.mpi
def test_results_out_refuses_an_existing_run_and_force_replaces_csv_and_sidecar(tmp_path):
    out = tmp_path / "r.csv"
    out.write_text("precious\n")
    out.with_suffix(".json").write_text("{}\n")
    quick = ("-e", "64", "--time-budget", "0.005", "--samples", "2")
    refused = run_mpi(2, "allreduce", *quick, "--out", out)
    assert refused.returncode == 64 and RULE in refused.stderr and out.read_text() == "precious\n"
    forced = run_mpi(2, "allreduce", *quick, "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "precious" not in out.read_text() and '"status": "complete"' in out.with_suffix(".json").read_text()


def test_report_out_refuses_a_folder_with_files_and_force_replaces_it_whole(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "mine.txt").write_text("precious\n")
    run = ROOT / "results" / "runs" / "20261123T123944Z-vm-allreduce-mpi-11815.csv"
    refused = run_ncbench("report", run, "--out", out)
    assert refused.returncode == 64 and RULE in refused.stderr and (out / "mine.txt").exists()
    forced = run_ncbench("report", run, "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (out / "report.html").exists() and not (out / "mine.txt").exists()


@requires_mpi
@pytest.mark.mpi
def test_health_out_refuses_a_folder_with_files_and_force_replaces_it(tmp_path):
    out = tmp_path / "night"
    out.mkdir()
    (out / "verdict.json").write_text("{}")
    args = ("health", "--suite", "quick", "--ranks-per-node", "1", "-T", "5", "--out", out)
    refused = run_mpi(4, *args, timeout=90)
    assert refused.returncode == 64 and RULE in refused.stderr and (out / "verdict.json").read_text() == "{}"
    forced = run_mpi(4, *args, "--force", timeout=90)
    assert forced.returncode in (0, 1), forced.stdout + forced.stderr
    assert (out / "verdict.json").read_text() != "{}" and (out / "records.jsonl").exists()
