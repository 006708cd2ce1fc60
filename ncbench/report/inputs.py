"""The report's inputs, read, checked and computed before anything is drawn.

results files and folders, topology files, prediction CSVs, a health verdict or folder -> Inputs: the rows and
sidecars, each fitted topology's model time per row (fit.model_times), the predictions (predict.sweep, the same
sweep `ncbench predict` runs, and predict.load for the CSVs given), and every given design's bill of materials
(topology.bill_of_materials, as `topo show` prints it). The sections only format what is here.
"""

from dataclasses import dataclass, field
from pathlib import Path

from .. import records
from ..errors import EXIT_DATAERR, NcbenchError

PREDICTED_OPS = ("allreduce", "allgather", "reducescatter", "alltoall")  # the ops the report draws
SCALES = (200_000, 1_000_000)  # the GPU counts it draws and sizes fabrics at


@dataclass(frozen=True)
class Modelled:
    """A fitted topology against these results."""

    design: object  # Topology
    times: object  # DataFrame (fit.model_times): measured and model time of every row it describes, or None
    left_out: str = ""  # one line naming the runs it cannot connect, or ""


@dataclass(frozen=True)
class Fabrics:
    """The given designs sized at each of SCALES, and the ones that cannot be compared."""

    sized: dict = field(default_factory=dict)  # design name -> (BillOfMaterials per SCALES)
    flat: tuple[str, ...] = ()  # given designs with no switch tier: nothing to size or power
    not_given: tuple[str, ...] = ()  # designs only in a predictions CSV: their files were not given


@dataclass
class Inputs:
    results: object  # DataFrame of every row
    meta: dict  # run_id -> sidecar
    topologies: list = field(default_factory=list)  # (path, Topology), as given
    health: list = field(default_factory=list)  # verdicts, oldest first
    files: dict = field(default_factory=dict)  # run_id -> its results file
    modelled: dict = field(default_factory=dict)  # fitted topology path -> Modelled
    per_algo: object = None  # DataFrame: every algorithm of each given design at SCALES, or None
    auto: object = None  # DataFrame: the automatic choice (the CSVs given, then the designs they lack), or None
    fabrics: Fabrics = field(default_factory=Fabrics)
    band_percent: float = 0.0  # the interval a prediction band spans (predict.BAND_PERCENT)


def gather(results: list[Path], *, topologies=(), predictions=(), health: Path | None = None) -> Inputs:
    """Load and check every input, then compute what the sections draw; one sentence (65) naming a bad file.

    What a fitted topology cannot connect (more ranks than it has) is left out of its model, with a note.
    """
    from ..model import predict
    from ..model import topology as topo_mod

    frame = records.load(*results)
    meta, files = records.runs_of(results)
    designs = [(Path(p), topo_mod.load(p)) for p in topologies]
    for path, design in designs:
        if design.fit:
            _check_fitted_to(path, design, set(meta) | set(frame["run_id"]))
    sweeps = [_predictions_csv(Path(p)) for p in predictions]
    nights = _health(Path(health)) if health is not None else []
    inputs = Inputs(frame, meta, designs, nights, files=files, band_percent=predict.BAND_PERCENT)
    inputs.modelled = {path: _modelled(frame, design, files, meta) for path, design in designs if design.fit}
    inputs.per_algo, inputs.auto = _predictions(designs, sweeps)
    inputs.fabrics = _fabrics(designs, inputs.auto)
    return inputs


def _predictions_csv(path: Path):
    from ..model import predict

    return predict.load(path)


def _health(path: Path) -> list:
    from ..health import history

    return history.load(path) if path.is_dir() else [_verdict(path)]


def _verdict(path: Path) -> dict:
    from ..health.outputs import SCHEMA

    v = records.read_json(path, "not a readable health verdict")
    if not isinstance(v, dict) or v.get("schema") != SCHEMA:
        raise NcbenchError(f"{path}: not an ncbench health verdict (schema {SCHEMA})", EXIT_DATAERR)
    return v


def _modelled(frame, design, files: dict, meta: dict) -> Modelled:
    """Return the fitted design's model time for every row it describes, naming the runs it cannot connect."""
    from ..model import fit

    rows, left = fit.describable(frame, design)
    note = fit.left_out_text(design, left, files) if left else ""
    if fit.usable(rows).empty:
        return Modelled(design, None, note)
    return Modelled(design, fit.model_times(rows, design, algorithm=design.fit.algorithm, meta=meta), note)


def _predictions(designs, sweeps):
    """Return (every algorithm of each given design at SCALES, the automatic choice of every design)."""
    import pandas as pd

    from ..model import predict

    given = [design for _, design in designs]
    if not given and not sweeps:
        return None, None
    per_algo = predict.sweep(given, ops=PREDICTED_OPS, gpus=SCALES, algorithms=("all",), scale=False) if given else None
    named = {name for sweep in sweeps for name in sweep["topology"].unique()}
    missing = [design for design in given if design.name not in named]
    auto = (
        sweeps + [predict.sweep(missing, ops=PREDICTED_OPS, algorithms=("auto",), scale=False)] if missing else sweeps
    )
    return per_algo, pd.concat(auto, ignore_index=True)


def _fabrics(designs, auto) -> Fabrics:
    """Size every given design with switch tiers at each of SCALES (copying its outermost tier where too small)."""
    from ..model import topology as topo_mod

    sized, flat = {}, []
    for _, design in designs:
        if len(design.tiers) < 2 or all(t.switch is None for t in design.tiers[1:]):
            flat.append(design.name)
        else:
            sized[design.name] = tuple(topo_mod.bill_of_materials(design, g, extend=True) for g in SCALES)
    named = [] if auto is None else [n for n in auto["topology"].unique() if n not in sized and n not in flat]
    return Fabrics(sized, tuple(flat), tuple(named))


def _check_fitted_to(path: Path, design, run_ids: set[str]) -> None:
    """A fitted topology must have been fitted to (some of) these results, or its residuals mean nothing.

    Matched by run id, so a copy of those results in another folder is the same results: the run ids the fit
    recorded (fit.runs), else, for a topology fitted before fit.runs existed, those of the files fit.results names.
    """
    fitted = set(design.fit.runs) or _run_ids_in(design.fit.results)
    if fitted & run_ids:
        return
    named = ", ".join(design.fit.results) or "unnamed results"
    if fitted:
        why = f"none of its runs ({_few(sorted(fitted))}) is among them"
    else:
        why = "they are not where it says, so which runs they were is unknown"
    raise NcbenchError(
        f"{path} was fitted to {named}, not to these results: {why}; pass those results too, or a nominal topology",
        EXIT_DATAERR,
    )


def _run_ids_in(paths) -> set[str]:
    """Return the run ids (file stems) of the results files named by `paths`, as far as they still exist."""
    ids = set()
    for p in map(Path, paths):
        if p.is_dir():
            ids |= {f.stem for f in p.glob("*.csv")}
        elif p.suffix == ".csv":
            ids.add(p.stem)
    return ids


def _few(names: list[str], most: int = 3) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
