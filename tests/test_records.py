"""Results files: every row flushed as measured, never overwritten, loaded into one DataFrame."""

import json

import pytest

from ncbench import records
from ncbench.errors import EXIT_DATAERR, NcbenchError


def _row(nbytes, **extra):
    row = {c: 0 for c in records.RESULT_COLUMNS}
    row.update(
        run_id="r",
        op="allreduce",
        backend="mpi",
        dtype="float",
        redop="sum",
        wrong_sources="",
        slowest_host="",
        timing="host",
        time="2026-11-23T00:00:00+00:00",
        nbytes=nbytes,
        time_us=1.5,
        in_place=False,
    )
    row.update(extra)
    return row


def test_rows_are_readable_before_the_run_finishes(tmp_path):
    writer = records.RunWriter(tmp_path / "r.csv", {"argv": ["x"]})
    writer.append(_row(8))
    writer.append(_row(16, in_place=True, wrong=3, wrong_sources="1;2"))
    frame = records.load(tmp_path / "r.csv")  # no finish(): as after a SIGKILL
    assert list(frame.nbytes) == [8, 16] and list(frame.in_place) == [False, True]
    assert frame.wrong_sources[1] == "1;2" and frame.time_us.dtype == float
    assert records.load_meta(tmp_path / "r.csv")["status"] == "running"
    writer.finish(status="complete")
    assert records.load_meta(tmp_path / "r.csv")["status"] == "complete"


def test_results_are_never_overwritten(tmp_path):
    records.RunWriter(tmp_path / "r.csv", {}).finish()
    before = (tmp_path / "r.csv").read_text()
    with pytest.raises(NcbenchError, match="never overwritten"):
        records.RunWriter(tmp_path / "r.csv", {})
    assert (tmp_path / "r.csv").read_text() == before


def test_load_many_runs_from_a_directory(tmp_path):
    for name in ("a", "b"):
        w = records.RunWriter(tmp_path / f"{name}.csv", {})
        w.append(_row(8, run_id=name))
        w.finish()
    frame = records.load(tmp_path)
    assert sorted(frame.run_id) == ["a", "b"]


def test_newer_schema_is_refused(tmp_path):
    records.RunWriter(tmp_path / "r.csv", {}).finish()
    meta = json.loads((tmp_path / "r.json").read_text())
    (tmp_path / "r.json").write_text(json.dumps({**meta, "schema": records.SCHEMA + 1}))
    with pytest.raises(NcbenchError, match="newer") as err:
        records.load(tmp_path / "r.csv")
    assert err.value.exit_code == EXIT_DATAERR


def test_foreign_file_is_refused(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(NcbenchError, match="missing columns"):
        records.load(tmp_path / "x.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NcbenchError, match="no results files"):
        records.load(tmp_path / "empty")
