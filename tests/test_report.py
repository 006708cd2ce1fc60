"""ncbench report from real committed results: every section and plot, self-contained, opened in headless Chromium."""

import re
import shutil
import subprocess

import pytest
from conftest import ROOT

from ncbench import report
from ncbench.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
requires_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (scripts/test installs it)")
INPUTS = {
    "topologies": [ROOT / "topologies/this-machine.fitted.toml", ROOT / "topologies/colossus-spectrum-x-200k.toml"],
    "predictions": [ROOT / "results/predictions/default-sweep.csv"],
    "health": ROOT / "results/health",
}
EXPECTED_PLOTS = {
    "measured-allreduce-mpi",
    "measured-sendrecv-mpi",
    "measured-latency-mpi",
    "model-this-machine.fitted",
    "predicted-colossus-spectrum-x-200k",
    "predicted-scale",
    "fabrics-per-mw",
    "health-trend",
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, committed_runs):
    out = tmp_path_factory.mktemp("report") / "r"
    inputs = report.gather([committed_runs], **INPUTS)
    report.write(out, report.build(inputs), title="test report", sources=["results/runs"])
    return out


def browse(page, *flags):
    """Return (stdout, stderr) of headless Chromium on a file, with console messages logged to stderr."""
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            *flags,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout, done.stderr


def console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_every_section_and_plot_is_in_the_page_and_its_markdown_twin(rendered):
    page = (rendered / "report.html").read_text()
    assert re.findall(r"<section id='(\w+)'>", page) == [key for key, _ in report.SECTIONS]
    plots = set(re.findall(r"<figure class='plot' id='plot-([^']+)'><svg", page))
    assert EXPECTED_PLOTS <= plots, EXPECTED_PLOTS - plots
    md = (rendered / "report.md").read_text()
    assert {p.stem for p in (rendered / "report_files").glob("*.svg")} == plots
    assert all(f"(report_files/{p}.svg)" in md for p in plots)
    assert "#       size         count      type   redop    root" in page  # the nccl-tests table
    assert "NCB-PAIR-SLOW" in page and "tree/ll" in page  # tonight's verdict; algorithm crossovers


def test_the_page_needs_no_network(rendered):
    page = (rendered / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert (
        "<script" not in page and "@import" not in page and not re.search(r"url\((?!#)", page)
    )  # url(#clip) is in-page


@requires_chromium
def test_the_console_check_sees_an_error(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); missingFunction();</script></body></html>")
    _, err = browse(bad, "--dump-dom")
    assert any("boom" in line for line in console(err)) and any("Uncaught" in line for line in console(err))


@requires_chromium
def test_chromium_renders_every_plot_with_no_console_error(rendered, tmp_path):
    from PIL import Image

    page = rendered / "report.html"
    dom, err = browse(page, "--dump-dom")
    assert console(err) == []
    for key, _ in report.SECTIONS:
        assert f'<section id="{key}">' in dom
    assert dom.count("<svg") == page.read_text().count("<svg") >= len(EXPECTED_PLOTS)
    shot = tmp_path / "shot.png"
    _, err = browse(page, "--window-size=1200,4000", f"--screenshot={shot}")
    assert console(err) == []
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 4000)
    pixels = image.tobytes()
    inked = sum(1 for v in pixels if v < 250) / len(pixels)
    assert inked > 0.05, (
        f"the screenshot is (nearly) blank: {inked:.1%} of pixels inked"
    )  # a blank page: 0 %, this: ~34 %


def run_cli(capfd, *args):
    with pytest.raises(SystemExit) as done:
        main(["report", *map(str, args)])
    return done.value.code, capfd.readouterr().err


def test_bad_input_is_one_sentence_exit_65_and_leaves_nothing(tmp_path, capfd):
    import json

    newer = tmp_path / "newer"
    newer.mkdir()
    src = ROOT / "results/runs/20261123T123944Z-vm-allreduce-mpi-11815"
    shutil.copy(src.with_suffix(".csv"), newer / "r.csv")
    (newer / "r.json").write_text(json.dumps({**json.loads(src.with_suffix(".json").read_text()), "schema": 99}))
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ([newer], "newer than this ncbench reads"),
        ([empty], "no results files"),
        ([newer.parent / "nope"], "no such file"),
        (
            [
                src.with_suffix(".csv"),
                "--topology",
                ROOT / "topologies/this-machine.fitted.toml",
                "--predictions",
                src.with_suffix(".csv"),
            ],
            "not an ncbench predictions CSV",
        ),
    ]
    for args, message in cases:
        out = tmp_path / "out"
        code, err = run_cli(capfd, *args, "--out", out)
        assert code in (64, 65) and message in err, err
        assert not out.exists() and not list(tmp_path.glob(".out*"))
    other = tmp_path / "other"
    other.mkdir()
    copy_run(src, other / "x.csv", run_id="20261201T000000Z-elsewhere-allreduce-mpi-1")  # other results
    code, err = run_cli(
        capfd, other, "--topology", ROOT / "topologies/this-machine.fitted.toml", "--out", tmp_path / "o"
    )
    assert code == 65 and "this-machine.fitted.toml was fitted to results/runs, not to these results" in err
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "report.html").write_text("mine")
    code, err = run_cli(capfd, src.with_suffix(".csv"), "--out", kept)
    assert code == 64 and (kept / "report.html").read_text() == "mine"


def test_progress_draws_on_a_terminal_and_stays_silent_in_a_pipe():
    import io

    from ncbench.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        step = Progress("report", total=2, stream=stream)
        step("runs")
        step("health")
        step.done()
    assert "\rreport [1/2] runs" in tty.getvalue() and "[2/2] health" in tty.getvalue()
    assert tty.getvalue().endswith("\r") and pipe.getvalue() == ""


# ----------------------------------------------------------------------------------------------- faulty and unfit runs

ALLREDUCE_NEWER = "20261123T124037Z-vm-allreduce-mpi-11955"
ALLREDUCE_OLDER = "20261123T123944Z-vm-allreduce-mpi-11815"
ALLGATHER = "20261123T123952Z-vm-allgather-mpi-11835"
REDUCESCATTER = "20261123T123958Z-vm-reducescatter-mpi-11855"


def copy_run(src, dst, *, run_id: str, **columns) -> None:
    """Copy a committed run (CSV and sidecar) to `dst` under another run id, with some columns set for every row."""
    import json

    import pandas as pd

    frame = pd.read_csv(src.with_suffix(".csv"), dtype=str, keep_default_na=False)
    frame = frame.assign(run_id=run_id, **{k: str(v) for k, v in columns.items()})
    frame.to_csv(dst, index=False)
    meta = json.loads(src.with_suffix(".json").read_text())
    dst.with_suffix(".json").write_text(json.dumps({**meta, **columns, "run_id": run_id}))


def eight_rank_run(folder, name: str = "x") -> None:
    """Add to `folder` an allgather run of 8 ranks at 1 per node (as the README's mpiexec -n 8 example writes)."""
    src = ROOT / f"results/runs/{ALLGATHER}"
    copy_run(src, folder / f"{name}.csv", run_id=name, nranks=8, nnodes=8, ranks_per_node=1)


def doctor(runs) -> None:
    """Make the newest allreduce a killed run, reducescatter a failed one and allgather one with wrong rows."""
    import json

    import pandas as pd

    killed = runs / f"{ALLREDUCE_NEWER}.json"
    meta = json.loads(killed.read_text())
    meta = {k: v for k, v in meta.items() if k not in ("exit_code", "end")}
    killed.write_text(json.dumps({**meta, "status": "running"}))
    failed = runs / f"{REDUCESCATTER}.json"
    failed.write_text(json.dumps({**json.loads(failed.read_text()), "status": "failed", "exit_code": 1}))
    wrong = runs / f"{ALLGATHER}.csv"
    frame = pd.read_csv(wrong, dtype=str, keep_default_na=False)
    frame.loc[frame.index[:3], "wrong"] = "5"
    frame.to_csv(wrong, index=False)


def test_faulty_runs_are_marked_drawn_apart_and_never_the_latest_table_unsaid(tmp_path, monkeypatch, committed_runs):
    from ncbench import plots

    runs = tmp_path / "runs"
    shutil.copytree(committed_runs, runs)
    doctor(runs)
    drawn = []
    monkeypatch.setattr(plots, "figure", lambda panels, **_: drawn.append(panels) or "<svg></svg>")
    inputs = report.gather([runs])
    (table,) = [b for b in report.runs_section(inputs).blocks if b[0] == "table"]
    rows = {row[0]: dict(zip(table[1], row, strict=True)) for row in table[2]}
    assert rows[ALLREDUCE_NEWER]["status"] == "incomplete (killed?)" and rows[ALLREDUCE_NEWER]["exit code"] is None
    assert (rows[REDUCESCATTER]["status"], rows[REDUCESCATTER]["exit code"]) == ("failed", 1)
    assert rows[ALLGATHER]["wrong rows"] == 3 and rows[ALLREDUCE_OLDER]["status"] == "complete"
    blocks = report.measured_section(inputs).blocks
    text = "\n".join(b[1] if b[0] in ("p", "pre") else b[2] for b in blocks if b[0] in ("p", "pre", "plot"))
    series = [s for panels in drawn for s in panels[0]["series"]]
    looks = {s["label"].rsplit(" (", 1)[-1]: (s.get("style"), s.get("color")) for s in series if "vm n=4" in s["label"]}
    assert {"incomplete)", "failed)", "wrong data)"} <= set(looks) and looks["failed)"] == ("--", "0.55")
    assert f"# allreduce, mpi: {ALLREDUCE_OLDER} (4 ranks" in text  # not the newer, killed run
    assert f"newer and left out: {ALLREDUCE_NEWER}, which is incomplete (killed?)" in text
    assert f"allgather (mpi): no complete, clean run: the table is from {ALLGATHER}, which has 3 row(s)" in text
    assert f"# allgather, mpi: {ALLGATHER} [wrong data]" in text and "which failed (exit 1)" in text
    assert "allreduce (mpi, float, out-of-place); dashed grey: failed, incomplete or wrong-data runs" in text


def test_the_readme_report_leaves_out_a_run_its_fitted_topology_cannot_connect(
    tmp_path, capfd, monkeypatch, committed_runs
):
    monkeypatch.chdir(ROOT)  # the committed fitted topology names results/runs as the repository holds it
    runs = tmp_path / "runs"  # a copy of those results, with the README's 8-rank allgather in it
    shutil.copytree(committed_runs, runs)
    eight_rank_run(runs)
    out = tmp_path / "report"
    code, err = run_cli(
        capfd,
        runs,
        "--topology",
        INPUTS["topologies"][0],
        "--topology",
        INPUTS["topologies"][1],
        "--predictions",
        INPUTS["predictions"][0],
        "--health",
        INPUTS["health"],
        "--out",
        out,
    )
    assert code == 0, err
    md = (out / "report.md").read_text()
    assert (
        f"Left out of {INPUTS['topologies'][0]}'s model: this-machine.fitted cannot connect the run x in "
        f"{runs / 'x.csv'} (8 ranks at 1 per node; at most 4)"
    ) in md
    assert "Here against" in md and "# allgather, mpi: x (8 ranks" in md


def test_every_refusal_comes_before_the_sections_are_drawn(tmp_path, capfd, monkeypatch):
    def drawn(*_, **__):
        raise AssertionError("the report drew its sections before refusing")

    monkeypatch.setattr(report, "build", drawn)
    src = ROOT / "results/runs/20261123T123944Z-vm-allreduce-mpi-11815.csv"
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "report.html").write_text("mine")
    code, err = run_cli(capfd, src, "--out", kept)
    assert code == 64 and f"{kept} is not empty and is never overwritten without --force" in err
    code, err = run_cli(capfd, src, "--predictions", src, "--out", tmp_path / "o")
    assert code == 65 and f"{src}: not an ncbench predictions CSV" in err


def test_a_tiny_test_run_is_never_the_latest_table_unsaid():
    clean = report.RunState("complete", 0, 0, report.CLEAN)
    states = {"a-full": clean, "b-tiny": clean}
    run_id, note = report.latest_run(["a-full", "b-tiny"], states, {"a-full": 23, "b-tiny": 2})
    assert run_id == "a-full" and "b-tiny, which measured only 2 size(s) of the 23" in note
    assert report.latest_run(["a-full", "b-tiny"], states, {"a-full": 23, "b-tiny": 20}) == ("b-tiny", "")


def test_a_fit_made_in_python_renders_in_a_report_and_the_report_draws_what_predict_writes(tmp_path, committed_runs):
    from ncbench import records
    from ncbench.model import fit, predict, topology

    rows = records.load(committed_runs)
    result = fit.fit(rows[rows["op"] == "allreduce"], topology.load(ROOT / "topologies/this-machine.toml"), samples=20)
    fitted = topology.save(result.topology, tmp_path / "mine.fitted.toml")  # no CLI: no sources named
    design = ROOT / "topologies/colossus-1m-4tier.toml"
    inputs = report.gather([committed_runs], topologies=[fitted, design])
    sections = report.build(inputs)
    text = " ".join(b[1] for b in sections["model"].blocks if b[0] == "p")
    assert f"{fitted}: fitted to runs 20261123T" in text and "with algorithm ring" in text and "Here against" in text
    expected = predict.sweep([topology.load(design)], ops=("allreduce",), algorithms=("auto",), scale=False)
    drawn = inputs.auto[(inputs.auto["topology"] == "colossus-1m-4tier") & (inputs.auto["op"] == "allreduce")]
    assert drawn.reset_index(drop=True).equals(expected)  # the report's numbers are predict's, not its own
    (fabric,) = [b for b in sections["fabrics"].blocks if b[0] == "table"]
    sized = topology.bill_of_materials(topology.load(design), 1_000_000, extend=True)
    assert ["colossus-1m-4tier", "1,000,000", sized.tiers, f"{sized.switches:,}"] == fabric[2][1][:4]
