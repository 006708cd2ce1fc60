"""Inputs -> sections of the report, each a list of blocks (paragraphs, tables, plots, preformatted text).

runs, measured, model, predictions, fabrics and health; formatting only: what is computed (model times,
predictions, bills of materials) arrives computed in `inputs.Inputs`.
"""

from dataclasses import dataclass, field

import numpy as np

from ..units import format_size
from .inputs import PREDICTED_OPS, SCALES, Inputs

SECTIONS = (
    ("runs", "Runs"),
    ("measured", "Measured"),
    ("model", "Fitted model against its measurements"),
    ("predictions", "Predictions from 200k to 1M GPUs"),
    ("fabrics", "Fabric designs side by side"),
    ("health", "Fabric health"),
)
LARGE = 1 << 30  # the size fabric designs are compared at


@dataclass
class Section:
    blocks: list = field(
        default_factory=list
    )  # ("p", text) | ("table", header, rows) | ("plot", name, title, svg) | ("pre", text)

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, header: list[str], rows: list[list]) -> None:
        self.blocks.append(("table", header, rows))

    def plot(self, name: str, title: str, svg: str) -> None:
        self.blocks.append(("plot", name, title, svg))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))


# ----------------------------------------------------------------------------------------------- sections


def _label(run_id: str, meta: dict) -> str:
    hosts = meta.get("hosts") or ["?"]
    return f"{run_id[:16]} {hosts[0]}{'+' + str(len(hosts) - 1) if len(hosts) > 1 else ''} n={meta.get('nranks', '?')}"


STATUS_TEXT = {"running": "incomplete (killed?)", "timed_out": "timed out"}  # a killed run never got to write its end
FAULT = {"running": "incomplete", "timed_out": "timed out"}  # the label of a run's curves; else its status
WHY = {"failed": "failed", "timed_out": "timed out", "aborted": "was aborted", "running": "is incomplete (killed?)"}
CLEAN, UNKNOWN, FAULTY = 0, 1, 2  # what a run's sidecar and rows say of it, best first


@dataclass(frozen=True)
class RunState:
    status: str  # as the Runs table shows it
    exit_code: object  # the sidecar's, or None (old sidecars, killed runs)
    wrong_rows: int  # rows with a nonzero wrong count
    trust: int  # CLEAN (complete, exit 0, no wrong rows), UNKNOWN (no status recorded), FAULTY
    fault: str = ""  # FAULTY only: 'failed', 'incomplete', 'wrong data', ... (labels its curves)
    why: str = ""  # what is wrong or unknown, as the end of a sentence: 'is incomplete (killed?)'


def run_state(meta: dict, wrong_rows: int) -> RunState:
    """Return what a run's sidecar (status, exit_code) and its rows' wrong counts say of it."""
    status, code = meta.get("status"), meta.get("exit_code")
    text = STATUS_TEXT.get(status, status) if status else ("no sidecar" if not meta else "not recorded")
    if status and status != "complete":
        why = WHY.get(status, f"ended {status!r}") + (f" (exit {code})" if code is not None else "")
        return RunState(text, code, wrong_rows, FAULTY, FAULT.get(status, status), why)
    if wrong_rows:
        return RunState(text, code, wrong_rows, FAULTY, "wrong data", f"has {wrong_rows} row(s) with wrong data")
    if code not in (None, 0):
        return RunState(text, code, wrong_rows, FAULTY, f"exit {code}", f"exited {code}")
    if not status:
        return RunState(text, code, wrong_rows, UNKNOWN, "", f"has no recorded status ({text})")
    return RunState(text, code, wrong_rows, CLEAN)


def run_states(inp: Inputs) -> dict[str, RunState]:
    """Return every run's state: the runs with rows and the runs whose sidecar is all they left."""
    wrong = inp.results["wrong"].astype(float).fillna(0).gt(0).groupby(inp.results["run_id"]).sum()
    ids = sorted(set(inp.results["run_id"]) | set(inp.meta))
    return {i: run_state(inp.meta.get(i, {}), int(wrong.get(i, 0))) for i in ids}


def runs_section(inp: Inputs) -> Section:
    sec = Section()
    states = run_states(inp)
    sec.p(
        f"{len(states)} run(s), {len(inp.results):,} rows. Each run is labelled with its hosts, ranks, versions "
        "and date from its sidecar, and with how it ended: a run still marked running never finished "
        "(killed?); failed, incomplete and wrong-data runs are drawn dashed grey below."
    )
    by_run = dict(tuple(inp.results.groupby("run_id", sort=True)))
    rows = [_run_row(run_id, by_run.get(run_id), inp.meta.get(run_id, {}), states[run_id]) for run_id in states]
    sec.table(
        [
            "run",
            "ops",
            "backend",
            "status",
            "exit code",
            "wrong rows",
            "hosts",
            "ranks",
            "per node",
            "MPI / source",
            "ncbench",
            "git",
            "date",
        ],
        rows,
    )
    return sec


def _run_row(run_id: str, part, m: dict, state: RunState) -> list:
    settings = m.get("settings", {})
    ops = sorted(part["op"].unique()) if part is not None else [settings.get("op") or m.get("command", "")]
    backends = sorted(part["backend"].unique()) if part is not None else [settings.get("backend", "")]
    hosts = m.get("hosts", [])
    v = m.get("versions", {})
    source = m.get("sources", [{}])[0].get("nccl_tests_version", "") if m.get("sources") else ""
    nranks = m.get("nranks", part["nranks"].max() if part is not None else "")
    return [
        run_id,
        ", ".join(ops),
        ", ".join(backends),
        state.status,
        state.exit_code,
        state.wrong_rows,
        ", ".join(hosts[:4]) + (" ..." if len(hosts) > 4 else ""),
        nranks,
        m.get("ranks_per_node", ""),
        v.get("mpi_library", source),
        v.get("ncbench", ""),
        v.get("git", ""),
        (m.get("date") or "")[:19],
    ]


def measured_section(inp: Inputs) -> Section:
    from ..measure.p2p import TESTS

    sec = Section()
    states = run_states(inp)
    frame = inp.results[inp.results["time_us"].astype(float) > 0]
    for (op, backend), part in frame.groupby(["op", "backend"], sort=True):
        if _measured_plot(sec, op, backend, part, inp.meta, states) and op not in TESTS:  # p2p: no nccl-tests table
            _latest_table(sec, op, backend, part, states)
    if not sec.blocks:
        sec.p("No timed rows in these results.")
    return sec


def _measured_plot(sec: Section, op: str, backend: str, part, meta: dict, states: dict) -> bool:
    """Draw an op's busbw and time per run (faulty runs dashed grey, labelled); False when nothing is drawable."""
    from .. import plots

    main = part[~part["in_place"].astype(bool)]
    placement = "out-of-place" if len(main) else "in-place"
    main = main if len(main) else part  # an import may hold in-place rows only
    common = main.groupby(["dtype", "redop"]).size().idxmax()
    main = main[(main["dtype"] == common[0]) & (main["redop"] == common[1]) & (main["root"].astype(int) <= 0)]
    bw, tm = [], []
    for run_id, run in main.groupby("run_id", sort=True):
        state = states[run_id]
        look = {"style": "--", "color": "0.55"} if state.trust == FAULTY else {}
        for nranks, one in run.groupby("nranks"):
            by = one.groupby("nbytes")[["busbw_GBps", "time_us"]].mean().reset_index()
            by = by[by["nbytes"] > 0]
            label = _label(run_id, meta.get(run_id, {})) + (f" ({nranks} ranks)" if run["nranks"].nunique() > 1 else "")
            label += f" ({state.fault})" if state.fault else ""
            bw.append({"label": label, "x": by["nbytes"], "y": by["busbw_GBps"], **look})
            tm.append({"label": label, "x": by["nbytes"], "y": by["time_us"], **look})
    if not bw:
        return False
    faulty = any(states[r].trust == FAULTY for r in main["run_id"].unique())
    title = f"{op} ({backend}, {common[0]}, {placement})" + (
        "; dashed grey: failed, incomplete or wrong-data runs" if faulty else ""
    )
    svg = plots.figure(
        [
            {"title": f"{op}: bus bandwidth", "xlabel": "size", "ylabel": "busbw (GB/s)", "sizes": True, "series": bw},
            {
                "title": f"{op}: time",
                "xlabel": "size",
                "ylabel": "time (us)",
                "ylog": True,
                "sizes": True,
                "series": tm,
            },
        ]
    )
    sec.plot(f"measured-{op}-{backend}", title, svg)
    return True


TINY_SHARE = 0.25  # a run that measured under this share of the sizes another run of the op did is a tiny test run


def latest_run(run_ids, states: dict, sizes: dict | None = None) -> tuple[str, str]:
    """Return (the run an op's 'latest run' table shows, a note when it is not simply the newest run).

    The newest complete clean run that is not a tiny test run (`sizes`: run id -> sizes measured); when there
    is none, the newest of the best there is, and the note says what it is.
    """
    ids = sorted(run_ids)
    best = min(states[i].trust for i in ids)
    trusted = [i for i in ids if states[i].trust == best]
    most = max((sizes or {}).get(i, 0) for i in trusted)
    tiny = {i for i in trusted if sizes and sizes.get(i, 0) < TINY_SHARE * most}
    chosen = max(i for i in trusted if i not in tiny)
    if best == FAULTY:
        return chosen, f"no complete, clean run: the table is from {chosen}, which {states[chosen].why}"
    if best == UNKNOWN:
        return chosen, f"no run is known to be complete: the table is from {chosen}, which {states[chosen].why}"
    why = {i: f"measured only {sizes[i]} size(s) of the {most} another run did" for i in tiny}
    newer = [f"{i}, which {why.get(i) or states[i].why}" for i in ids if i > chosen]
    return chosen, (
        f"the table is from {chosen}, the newest complete clean run; newer and left out: " + "; ".join(newer)
    ) if newer else ""


def _latest_table(sec: Section, op: str, backend: str, part, states: dict) -> None:
    """Add the nccl-tests table of the op's latest run (its largest communicator), with a note when it is faulty."""
    from ..measure.table import header, row_line

    run_id, note = latest_run(part["run_id"].unique(), states, part.groupby("run_id")["nbytes"].nunique().to_dict())
    if note:
        sec.p(f"{op} ({backend}): {note}.")
    latest = part[part["run_id"] == run_id]
    latest = latest[latest["nranks"] == latest["nranks"].max()]  # a --nodes run: its largest communicator
    lines = header()
    for _, rows in latest.groupby(["nbytes", "dtype", "redop", "root"], sort=True):
        oop = rows[~rows["in_place"].astype(bool)].to_dict("records")
        in_place = rows[rows["in_place"].astype(bool)].to_dict("records")
        if oop or in_place:
            lines.append(row_line((oop or in_place)[0], in_place[0] if oop and in_place else None))
    mark = f" [{states[run_id].fault}]" if states[run_id].trust == FAULTY else ""
    sizes = latest["nbytes"].astype(int)
    span = f"{format_size(int(sizes.min()))} to {format_size(int(sizes.max()))}"
    sec.pre(f"# {op}, {backend}: {run_id}{mark} ({latest['nranks'].iloc[0]} ranks, {span})\n" + "\n".join(lines[:40]))


def model_section(inp: Inputs) -> Section:
    sec = Section()
    if not inp.modelled:
        sec.p("No fitted topology given (--topology T.fitted.toml, written by `ncbench fit`).")
        return sec
    for path, one in inp.modelled.items():
        f, times = one.design.fit, one.times
        if one.left_out:
            sec.p(f"Left out of {path}'s model: {one.left_out}.")
        if times is None:
            sec.p(
                f"{path} describes none of the rest: no timed, correct, multi-rank row of a modelled op "
                "within its size."
            )
            continue
        source = ", ".join(f.results) or f"runs {', '.join(f.runs)}"  # a fit made in Python names no files
        sec.p(
            f"{path}: fitted to {source} with algorithm {f.algorithm}, "
            f"{f.points} points, median |error| {f.median_abs_error_pct:.1f} % at fit time. "
            f"Here against {len(times)} usable rows of these results (every modelled op): median |error| "
            f"{times['error_pct'].abs().median():.1f} %, max {times['error_pct'].abs().max():.1f} %."
        )
        sec.plot(f"model-{one.design.name}", f"{one.design.name}: model against measurements", _model_figure(times))
        params = [[k, p.nominal, p.value, p.low, p.high, p.constrained] for k, p in f.parameter.items()]
        if params:
            sec.table(["parameter", "nominal", "fitted", "low (2.5 %)", "high (97.5 %)", "constrained"], params)
    return sec


def _model_figure(times) -> str:
    from .. import plots

    scatter, resid = [], []
    for op, part in times.groupby("op", sort=True):
        scatter.append({"label": op, "x": part["time_us"], "y": part["predicted_us"], "style": "", "marker": "o"})
        resid.append(
            {"label": op, "x": part["nbytes"], "y": part["predicted_us"] / part["time_us"], "style": "", "marker": "o"}
        )
    return plots.figure(
        [
            {
                "title": "model against measurement",
                "xlabel": "measured time (us)",
                "ylabel": "model time (us)",
                "ylog": True,
                "series": scatter,
                "diagonal": True,
            },
            {
                "title": "residuals",
                "xlabel": "size",
                "ylabel": "model / measured",
                "sizes": True,
                "ylog": True,
                "series": resid,
                "hline": 1.0,
            },
        ]
    )


def crossovers(auto, topology: str, op: str, gpus: int) -> str:
    """Return where the automatic choice changes algorithm over size: 'ring <= 64KiB < tree <= ...'."""
    rows = auto[(auto["topology"] == topology) & (auto["op"] == op) & (auto["gpus"] == gpus) & (auto["bytes"] > 0)]
    rows = rows.sort_values("bytes")
    if rows.empty:
        return ""
    parts, current, last = [], None, None
    for r in rows.itertuples():
        name = r.algorithm if not isinstance(r.protocol, str) else f"{r.algorithm}/{r.protocol}"
        if name != current:
            if current is not None:
                parts.append(f"{current} <= {format_size(int(last))} <")
            current = name
        last = r.bytes
    return " ".join(parts + [current])


def predictions_section(inp: Inputs) -> Section:
    sec = Section()
    if inp.per_algo is None and inp.auto is None:
        sec.p("No topology (--topology) or prediction sweep (--predictions) given.")
        return sec
    sec.p(
        f"Bands are the {inp.band_percent:g} % range: the fit's (or the nominal design's) parameter uncertainty "
        "and, for a fitted design, the model's out-of-sample error beyond the fitted scales. "
        "Per-algorithm curves are NCCL's algorithms each at its best protocol; the automatic choice is "
        "what NCCL's tuner would pick."
    )
    if inp.per_algo is not None:
        for name, part in inp.per_algo.groupby("topology", sort=False):
            _per_algorithm_plot(sec, name, part, inp.band_percent)
    if inp.auto is not None:
        _crossover_table(sec, inp.auto)
        _scale_plot(sec, inp.auto)
    return sec


def _per_algorithm_plot(sec: Section, name: str, part, band_percent: float) -> None:
    """Draw one design's busbw per algorithm against size, per op: 1M GPUs with its band, 200k dashed."""
    from .. import plots

    panels = []
    for op in PREDICTED_OPS:
        one = part[(part["op"] == op) & (part["bytes"] > 0)]
        series = []
        for i, (algo, g) in enumerate(one.groupby("algorithm", sort=True)):
            big, small = g[g["gpus"] == SCALES[-1]], g[g["gpus"] == SCALES[0]]
            color = f"C{i % 10}"
            low, high = big["busbw_GBps_low"], big["busbw_GBps_high"]
            series.append(
                {"label": algo, "x": big["bytes"], "y": big["busbw_GBps"], "color": color, "low": low, "high": high}
            )
            series.append(
                {
                    "label": f"_{algo} 200k",
                    "x": small["bytes"],
                    "y": small["busbw_GBps"],
                    "color": color,
                    "style": "--",
                    "marker": "",
                }
            )
        panels.append(_panel(f"{op}: 1M GPUs (200k dashed)", "size", "busbw (GB/s)", series, sizes=True))
    title = f"{name}: predicted busbw per algorithm at 1M GPUs (band: {band_percent:g} %), 200k dashed"
    sec.plot(f"predicted-{name}", title, plots.figure(panels, width_in=10, height_in=2.8))


def _panel(title: str, xlabel: str, ylabel: str, series: list, **more) -> dict:
    return {"title": title, "xlabel": xlabel, "ylabel": ylabel, "series": series, "legend": True, **more}


def _crossover_table(sec: Section, auto) -> None:
    rows = []
    for name in auto["topology"].unique():
        for op in PREDICTED_OPS:
            for gpus in SCALES:
                text = crossovers(auto, name, op, gpus)
                if text:
                    rows.append([name, op, f"{gpus:,}", text])
    sec.p("Where the automatic choice changes algorithm (or protocol) as the message grows:")
    sec.table(["design", "op", "GPUs", "choice by size"], rows)


def _scale_plot(sec: Section, auto) -> None:
    """Draw the automatic choice's 1 GiB allreduce and allgather time against the GPU count, per design."""
    from .. import plots

    panels = []
    for op in ("allreduce", "allgather"):
        big = auto[(auto["bytes"] == LARGE) & (auto["op"] == op)]
        series = []
        for name, g in big.sort_values("gpus").groupby("topology", sort=True):
            ms = {"y": g["time_us"] / 1e3, "low": g["time_us_low"] / 1e3, "high": g["time_us_high"] / 1e3}
            series.append({"label": name, "x": g["gpus"], **ms})
        if series:
            panels.append(_panel(f"1 GiB {op}, automatic choice", "GPUs", "time (ms)", series, ylog=True))
    if panels:
        title = "1 GiB allreduce and allgather time against GPUs, automatic choice"
        sec.plot("predicted-scale", title, plots.figure(panels, width_in=10, height_in=3.4))


FABRIC_COLUMNS = [
    "design", "GPUs", "tiers", "switches", "transceivers", "network MW", "allreduce busbw 1 GiB (GB/s)",
    "allgather busbw 1 GiB (GB/s)", "allreduce TB/s per MW", "allgather TB/s per MW",
]  # fmt: skip


def fabrics_section(inp: Inputs) -> Section:
    from .. import plots

    sec = Section()
    fabrics = inp.fabrics
    if fabrics.not_given:
        names = ", ".join(fabrics.not_given)
        sec.p(f"Not sized (only in a predictions CSV; pass their topology files to compare them): {names}.")
    if not fabrics.sized:
        sec.p("No fabric design with switches given.")
        return sec
    if fabrics.flat:
        sec.p(f"Left out (no switch tier, nothing to size or power): {', '.join(fabrics.flat)}.")
    rows, per_mw = [], {f"{g // 1000}k GPUs": [] for g in SCALES}
    for name, sized in fabrics.sized.items():
        for bom in sized:
            row, allreduce_per_mw = _fabric_row(inp.auto, name, bom)
            per_mw[f"{bom.gpus // 1000}k GPUs"].append(allreduce_per_mw)
            rows.append(row)
    sec.p(
        "Switch tiers include the scale-up domain; designs too small for the GPU count get copies of their "
        "outermost tier. Network power is switches plus optics. Per MW: 1 GiB allreduce bus bandwidth summed "
        "over GPUs (TB/s) per megawatt of network."
    )
    sec.table(FABRIC_COLUMNS, rows)
    title = "1 GiB allreduce, TB/s of bus bandwidth per MW"
    bars = plots.bars(list(fabrics.sized), per_mw, title=title, ylabel="TB/s per MW")
    sec.plot("fabrics-per-mw", "Allreduce bandwidth per megawatt of network", bars)
    return sec


def _fabric_row(auto, name: str, bom) -> tuple[list, float]:
    """Return one design's row at one GPU count (bill of materials, busbw per megawatt), and its allreduce per MW."""
    bw = {op: _large_busbw(auto, name, op, bom.gpus) for op in ("allreduce", "allgather")}
    mw = bom.network_W / 1e6
    per = {op: bw[op] * bom.gpus / 1e3 / mw if mw else float("nan") for op in bw}  # TB/s of busbw per MW
    sized = [name, f"{bom.gpus:,}", bom.tiers, f"{bom.switches:,}", f"{bom.transceivers:,}", f"{mw:.1f}"]
    row = sized + [
        f"{bw['allreduce']:.1f}",
        f"{bw['allgather']:.1f}",
        f"{per['allreduce']:.1f}",
        f"{per['allgather']:.1f}",
    ]
    return row, per["allreduce"]


def _large_busbw(auto, name: str, op: str, gpus: int) -> float:
    """Return the automatic choice's busbw at LARGE for one design, op and GPU count (NaN when not predicted)."""
    if auto is None:
        return float("nan")
    hit = auto[(auto["topology"] == name) & (auto["op"] == op) & (auto["gpus"] == gpus) & (auto["bytes"] == LARGE)]
    return float(hit["busbw_GBps"].iloc[0]) if len(hit) else float("nan")


def health_section(inp: Inputs) -> Section:
    from .. import plots
    from ..health import history
    from ..health.outputs import line

    sec = Section()
    if not inp.health:
        sec.p("No health verdict given (--health results/health/ or a verdict.json).")
        return sec
    v = inp.health[-1]
    cov = v.get("coverage", {})
    sec.p(
        f"Tonight ({v['run_id']}, {v.get('suite', '')}): {v['status']} (exit {v.get('exit_code')}); tested "
        f"{cov.get('nodes_tested')} of {cov.get('nodes_expected')} nodes, {cov.get('unknown')} unknown; "
        f"{v.get('rounds')} rounds; baseline: {v.get('baseline', {}).get('note', 'none')}."
    )
    sec.table(
        ["stage", "state", "tests", "slow", "unanswered", "note"],
        [[s["stage"], s["status"], s["tests"], s["slow"], s["unanswered"], s["note"]] for s in v.get("stages", [])],
    )
    entities = v.get("entities", [])
    sec.table(
        ["entity", "kind", "verdict"],
        [[e["id"], e["kind"], line(e)] for e in entities[:50]] or [["none", "", "every node PASS"]],
    )
    trend = history.rows(inp.health)
    key = f"{history.TREND_CLASS}_GBps"
    sec.table(
        ["night", "status", "PASS", "WARN", "FAIL", "UNKNOWN", key],
        [
            [r["started"][:19], r["status"], r.get("PASS"), r.get("WARN"), r.get("FAIL"), r.get("UNKNOWN"), r.get(key)]
            for r in trend
        ],
    )
    x = np.arange(1, len(trend) + 1)
    svg = plots.figure(
        [
            {
                "title": "pair bandwidth (peer reference)",
                "xlabel": "night",
                "ylabel": "GB/s",
                "xlog": False,
                "series": [{"label": "pairs", "x": x, "y": [r.get(key) or np.nan for r in trend]}],
            },
            {
                "title": "nodes not passing",
                "xlabel": "night",
                "ylabel": "nodes",
                "xlog": False,
                "legend": True,
                "series": [
                    {"label": s, "x": x, "y": [r.get(s, 0) for r in trend]} for s in ("WARN", "FAIL", "UNKNOWN")
                ],
            },
        ]
    )
    sec.plot("health-trend", "Health over nights", svg)
    return sec


def build(inp: Inputs, progress=None) -> dict[str, Section]:
    """Return every section, in order, drawn from the checked inputs."""
    step = progress or (lambda _: None)
    draw = {
        "runs": runs_section, "measured": measured_section, "model": model_section,
        "predictions": predictions_section, "fabrics": fabrics_section, "health": health_section,
    }  # fmt: skip
    out = {}
    for key, _ in SECTIONS:
        step(key)
        out[key] = draw[key](inp)
    return out
