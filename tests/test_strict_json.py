"""Every JSON ncbench writes is strict JSON (RFC 8259, what JavaScript's JSON.parse accepts): null, never NaN.

stdout (`--format json`), run sidecars, imports, predictions, comparisons, health verdicts and their history are
parsed back here with a parser that refuses NaN, Infinity and -Infinity.
"""

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import requires_mpi, run_mpi

from ncbench import records
from ncbench.cli import Outcome, main
from ncbench.health import PASS, UNKNOWN, history, outputs
from ncbench.measure.table import Stdout

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "results" / "runs" / "20261123T123944Z-vm-allreduce-mpi-11815.csv"


def strict_loads(text: str):
    """Parse `text` as strict JSON: NaN, Infinity and -Infinity are refused, as JSON.parse refuses them."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def strict_lines(text: str) -> list:
    return [strict_loads(line) for line in text.splitlines() if line.strip()]


def cli(capfd, *args):
    """Run ncbench in this process: (exit code, stdout, stderr)."""
    Outcome.code = 0  # the exit code an earlier in-process command chose (compare's 2) must not carry over
    with pytest.raises(SystemExit) as done:
        main([*map(str, args)])
    out = capfd.readouterr()
    return done.value.code, out.out, out.err


# ------------------------------------------------------------------------------------------- the one helper


def test_json_text_writes_missing_and_non_finite_numbers_as_null():
    value = {
        "nan": math.nan,
        "inf": math.inf,
        "-inf": -math.inf,
        "np": np.float64("nan"),
        "na": pd.NA,
        "nat": pd.NaT,
        "nested": [1.5, {"x": np.array([np.nan, 2.0])}],
        "ok": np.int64(3),
        "flag": np.bool_(True),
    }
    assert strict_loads(records.json_text(value)) == {
        "nan": None,
        "inf": None,
        "-inf": None,
        "np": None,
        "na": None,
        "nat": None,
        "nested": [1.5, {"x": [None, 2.0]}],
        "ok": 3,
        "flag": True,
    }


def test_json_text_writes_what_json_has_no_type_for_as_text():
    when = datetime(2026, 12, 1, tzinfo=UTC)
    assert strict_loads(records.json_text({"path": Path("a/b"), "when": when, np.int64(4): "key"})) == {
        "path": "a/b",
        "when": str(when),
        "4": "key",
    }


def test_json_lines_is_one_strict_object_per_line():
    text = records.json_lines([{"a": math.nan}, {"a": 1}])
    assert text.endswith("\n") and strict_lines(text) == [{"a": None}, {"a": 1}]


# ------------------------------------------------------------------------------------------- runs


def test_json_stdout_rows_write_missing_statistics_as_null(capsys):
    out = Stdout("json", ["op", "time_us_p99", "device_time_us", "wrong"])
    out.add({"op": "allreduce", "time_us_p99": math.nan, "device_time_us": math.inf, "wrong": -1, "in_place": False})
    assert strict_lines(capsys.readouterr().out) == [
        {"op": "allreduce", "time_us_p99": None, "device_time_us": None, "wrong": -1}
    ]


def test_run_sidecar_is_strict(tmp_path):
    writer = records.RunWriter(
        tmp_path / "r.csv",
        {
            "run_id": "r",
            "time_budget_s": math.inf,
            "lateness_us": np.nan,
            "nranks": np.int64(2),
            "hosts": np.array(["a", "b"]),
        },
    )
    meta = strict_loads((tmp_path / "r.json").read_text())
    assert meta["time_budget_s"] is None and meta["lateness_us"] is None and meta["nranks"] == 2
    writer.finish(status="complete", exit_code=0, rows=0, took_s=math.nan)
    meta = strict_loads((tmp_path / "r.json").read_text())
    assert meta["status"] == "complete" and meta["took_s"] is None and meta["hosts"] == ["a", "b"]


@requires_mpi
def test_allreduce_json_stdout_and_its_sidecar_are_strict(tmp_path):
    done = run_mpi(2, "allreduce", "-e", "1K", "--format", "json", "-c", "0", "--out", tmp_path / "r.csv")
    assert done.returncode == 0, done.stderr
    rows = strict_lines(done.stdout)
    assert rows and all(r["wrong"] == -1 for r in rows)  # -c 0: nothing checked (N/A)
    assert all(r["device_time_us"] is None for r in rows)  # host buffers: no CUDA-event time, so null
    assert strict_loads((tmp_path / "r.json").read_text())["nranks"] == 2


def test_import_sidecar_is_strict_when_the_nccl_tests_file_holds_nan(tmp_path, capfd):
    source = json.loads((ROOT / "tests" / "data" / "nccl-tests" / "alltoall.json").read_text())
    source["config"]["warmup_iters"] = math.nan  # nccl-tests prints nan; Python's json reads it back
    log = tmp_path / "alltoall.json"
    log.write_text(json.dumps(source))
    code, _, err = cli(capfd, "import", log, "--out", tmp_path / "imported.csv")
    assert code == 0, err
    meta = strict_loads((tmp_path / "imported.json").read_text())
    assert meta["sources"][0]["warmup"] in (None, -1)  # missing (the importer's -1 for an unknown count), never NaN


# ------------------------------------------------------------------------------------------- model


def test_predict_json_on_stdout_and_in_its_out_file_is_strict(tmp_path, capfd):
    out = tmp_path / "p.json"
    design = ROOT / "topologies" / "colossus-1m-4tier.toml"
    code, text, err = cli(
        capfd,
        "predict",
        "--topology",
        design,
        "--gpus",
        "8,1M",
        "--bytes",
        "0,1G",
        "--algo",
        "all",
        "--format",
        "json",
        "--out",
        out,
    )
    assert code == 0, err
    rows = strict_loads(text)
    assert strict_loads(out.read_text()) == rows
    assert any(r["op"] == "init" and r["tiers"] is None for r in rows)  # init and mtbf rows have no tiers
    assert any(r["bytes"] == 0 and r["algbw_GBps"] is None for r in rows if r["op"] == "allreduce")


def test_compare_json_is_strict_when_a_change_is_infinitely_significant(tmp_path, capfd):
    paths = []
    for name, scale in (("a", 1.0), ("b", 1.5)):
        frame = pd.read_csv(RUN, keep_default_na=False)
        frame["time_us"] *= scale
        frame["time_us_std"] = 0.0  # no spread on either side: Welch's t is infinite
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        (tmp_path / f"{name}.json").write_text(RUN.with_suffix(".json").read_text())
        paths.append(tmp_path / f"{name}.csv")
    code, text, err = cli(capfd, "compare", *paths, "--format", "json")
    assert code == 2, err  # slower by 50 %: a regression
    rows = strict_lines(text)
    assert rows and all(r["t"] is None and r["verdict"] == "regression" for r in rows)


# ------------------------------------------------------------------------------------------- health


def night(run_id: str, reference) -> dict:
    """Return a health run's outcome whose pairs class, and one node's evidence, have no number (NaN)."""
    evidence = [{"stage": "pairs", "value": None, "spread": math.nan, "note": "no answer"}]
    entity = {
        "kind": "node",
        "id": "node000001",
        "node": "node000001",
        "status": UNKNOWN,
        "code": "NCB-UNREACHABLE",
        "evidence": evidence,
    }
    stages = [{"stage": "pairs", "status": PASS, "tests": 2, "slow": 0, "note": ""}]
    outcome = SimpleNamespace(
        entities=[entity], unknown_nodes=1, rounds=2, classes={history.TREND_CLASS: reference}, stages=stages
    )
    run = {
        "run_id": run_id,
        "suite": "quick",
        "started": f"2026-12-0{run_id[-1]}T02:00:00+00:00",
        "finished": f"2026-12-0{run_id[-1]}T02:01:00+00:00",
    }
    return outputs.verdict(
        outcome, run=run, names=["node000000", "node000001"], fabric={"rails": 1}, baseline={"classes": {}}
    )


def test_health_verdict_json_is_strict_when_a_test_went_unanswered(tmp_path):
    v = night("r1", math.nan)
    plan = outputs.drain_plan(v, max_drain_fraction=0.5, emulated=True)
    files = outputs.write_all(tmp_path, v, plan, ["node000000", "node000001"])
    written = strict_loads(files["verdict"].read_text())
    assert written["classes"][history.TREND_CLASS] is None
    assert written["entities"][0]["evidence"][0]["spread"] is None


def test_health_history_json_is_strict_even_over_verdicts_an_older_ncbench_wrote_with_nan(tmp_path, capfd):
    for run_id, reference in (("r1", math.nan), ("r2", 48.0)):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "verdict.json").write_text(json.dumps(night(run_id, reference)))  # NaN, as before
    code, text, err = cli(capfd, "health", "history", tmp_path, "--format", "json")
    assert code == 0, err
    rows = strict_lines(text)
    assert [r[f"{history.TREND_CLASS}_GBps"] for r in rows] == [None, 48.0]
