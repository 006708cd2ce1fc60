"""ncbench compare: Welch's t-test on recorded samples, regressions exit 2, bad input exit 65."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ncbench.cli import main
from ncbench.compare import welch_p

RUN = "results/runs/20261123T123944Z-vm-allreduce-mpi-11815.csv"
OTHER_OP = "results/runs/20261123T123952Z-vm-allgather-mpi-11835.csv"


def run_cli(capfd, *args):
    with pytest.raises(SystemExit) as done:
        main(["compare", *map(str, args)])
    out = capfd.readouterr()
    return done.value.code, out.out, out.err


def copy_run(tmp_path, name, scale=1.0, schema=None):
    csv = tmp_path / f"{name}.csv"
    frame = pd.read_csv(RUN, keep_default_na=False)
    frame["time_us"] *= scale
    frame.to_csv(csv, index=False)
    meta = json.loads(Path(RUN).with_suffix(".json").read_text())
    if schema:
        meta["schema"] = schema
    csv.with_suffix(".json").write_text(json.dumps(meta))
    return csv


def test_welch_matches_the_t_table():
    t, p = welch_p(10.0, 1.0, 11, 11.0, 1.0, 11)  # t = 2.345, df = 20: two-sided p = 0.0294
    assert t == pytest.approx(2.345, abs=1e-3) and p == pytest.approx(0.0294, abs=2e-4)
    assert welch_p(5.0, 0.0, 3, 5.0, 0.0, 3) == (0.0, 1.0)


def test_a_run_against_itself_is_all_the_same(capfd):
    code, out, _ = run_cli(capfd, RUN, RUN)
    assert code == 0
    assert "46 measurements: 0 regression, 0 slower, 0 faster, 46 same" in out


def test_a_slower_copy_is_a_significant_regression_and_exits_2(tmp_path, capfd):
    slower = copy_run(tmp_path, "slower", scale=1.5)
    code, out, _ = run_cli(capfd, RUN, slower, "--format", "csv")
    assert code == 2
    frame = pd.read_csv(pd.io.common.StringIO(out))
    assert frame["change_pct"].round(6).eq(50.0).all()
    assert (frame["verdict"] == "regression").mean() > 0.9  # the noisiest sizes may not reach p < 0.05
    code, _, _ = run_cli(capfd, RUN, slower, "--threshold", "60")
    assert code == 0  # significant, but within the threshold: slower, not a regression


def test_different_measurements_and_newer_schemas_are_refused(tmp_path, capfd):
    code, _, err = run_cli(capfd, RUN, OTHER_OP)
    assert code == 65 and "share no measurement" in err
    future = copy_run(tmp_path, "future", schema=99)
    code, _, err = run_cli(capfd, RUN, future)
    assert code == 65 and "newer than this ncbench reads" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capfd, RUN, empty)
    assert code == 65 and "no results files" in err
