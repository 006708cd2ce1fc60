"""The results schema and its files: results/runs/<run_id>.csv plus a <run_id>.json sidecar.

measured rows -> CSV appended and flushed row by row (a killed run keeps every completed row);
any number of runs -> one pandas DataFrame (`load`).
"""

import csv
import json
import math
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .errors import EXIT_DATAERR, EXIT_USAGE, NcbenchError

# Format history (bump SCHEMA and add a line on every change):
#   1  2026-11  first version
#   2  2026-11  device_time_us (CUDA events per sample); schema-1 files load with it empty (NaN)
SCHEMA = 2
ADDED_IN = {"device_time_us": 2}  # columns a file of an older schema may lack
RESULT_COLUMNS = {  # name -> type; units are in the names
    "run_id": str,
    "op": str,
    "backend": str,
    "dtype": str,
    "redop": str,
    "root": int,
    "in_place": bool,
    "nranks": int,
    "nnodes": int,
    "ranks_per_node": int,
    "nbytes": int,
    "count": int,
    "warmup": int,
    "iters": int,
    "samples": int,
    "time_us": float,  # mean over samples of the slowest rank's per-op time (nccl-tests prints a mean)
    "time_us_min": float,
    "time_us_p50": float,
    "time_us_p99": float,
    "time_us_max": float,
    "time_us_std": float,
    "cv": float,  # std / mean over samples
    "device_time_us": float,  # GPU backends: CUDA-event time per op, slowest rank, mean over samples
    "algbw_GBps": float,
    "busbw_GBps": float,
    "wrong": int,  # wrong elements summed over ranks; -1 = not checked (nccl-tests prints N/A)
    "wrong_sources": str,  # ';'-joined world ranks whose data arrived wrong; '?' if not isolated
    "slowest_rank": int,
    "slowest_host": str,  # the rank that consistently arrived last, or -1
    "lateness_us": float,  # how late it arrived (median over probed operations)
    "peer_a": int,
    "peer_b": int,  # point-to-point pair (world ranks); -1 for collectives
    "timing": str,  # "host": wall clock around back-to-back operations
    "time": str,  # when the row was measured (UTC, ISO 8601)
}
RUNS_DIR = Path("results/runs")


def new_run_id(host: str, label: str) -> str:
    """Return a run id that sorts by time: 20261123T120501Z-host-label-pid."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{host}-{label}")
    return f"{stamp}-{safe}-{os.getpid()}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def claim(path: Path, force: bool = False) -> Path:
    """The one rule for everything ncbench writes (results, imports, fits, predictions, reports, health runs):
    what exists is refused in one sentence, unless `force` (the user's --force) says to replace it."""
    path = Path(path)
    occupied = "is not empty" if path.is_dir() and any(path.iterdir()) else "already exists" if path.is_file() else ""
    if occupied and not force:
        raise NcbenchError(
            f"{path} {occupied} and is never overwritten without --force; choose another --out, "
            "or add --force to replace it"
        )
    return path


_OPEN: list["RunWriter"] = []  # runs this process is writing: however it ends, their sidecars say how


def ending(exit_code: int) -> str:
    """Return the status a run ending with `exit_code` records: complete, failed, timed_out or aborted."""
    from .errors import EXIT_OK, EXIT_SOFTWARE, EXIT_UNKNOWN

    return {EXIT_OK: "complete", EXIT_UNKNOWN: "timed_out", EXIT_SOFTWARE: "aborted"}.get(
        exit_code, "aborted" if exit_code >= 128 else "failed"
    )


def end_open_runs(exit_code: int, reason: str = "") -> int:
    """Record in every run this process still writes how it is ending (a timeout, an abort, an error).

    Called from the watchdog's thread and just before MPI_Abort: it flushes, never raises, never closes.
    Return how many runs it marked.
    """
    marked = 0
    for writer in list(_OPEN):  # noqa: PERF101 - a copy: finish() removes the writer from _OPEN
        try:
            writer.finish(status=ending(exit_code), exit_code=exit_code, reason=reason, close=False)
            marked += 1
        except Exception:  # noqa: BLE001, S110 - the process is ending; the rows are already flushed
            pass
    return marked


class RunWriter:
    """Writes one run: the CSV header at once, then each row as it is measured, flushed."""

    def __init__(self, path: Path, meta: dict, *, force: bool = False):
        self.path = path
        claim(path, force)
        claim(sidecar(path), force)
        if force:  # --force: the old run goes, CSV and sidecar together
            path.unlink(missing_ok=True)
            sidecar(path).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file = open(path, "x", newline="")  # noqa: SIM115 - open for the whole run; never overwrites
        except FileExistsError:
            claim(path)  # another process made it since: the same sentence ...
            raise  # ... unless it went again meanwhile
        except OSError as err:
            raise NcbenchError(f"cannot create {path}: {err.strerror}") from None
        self._csv = csv.DictWriter(self._file, fieldnames=list(RESULT_COLUMNS), extrasaction="raise")
        self._csv.writeheader()
        self._file.flush()
        self.meta = {"schema": SCHEMA, **meta, "status": "running"}
        self._write_meta()
        _OPEN.append(self)

    def append(self, row: dict) -> None:
        """Write one row and flush it to the operating system (survives SIGKILL of this process)."""
        self._csv.writerow({k: _cell(row.get(k)) for k in RESULT_COLUMNS})
        self._file.flush()

    def finish(self, *, status: str = "complete", exit_code: int = 0, close: bool = True, **summary) -> None:
        """Record how the run ended (status, exit code, end time) in the sidecar; close the CSV."""
        if self in _OPEN:
            _OPEN.remove(self)
        if close:
            self._file.close()
        else:
            self._file.flush()
        self.meta.update(summary, status=status, exit_code=exit_code, end=now_iso())
        self._write_meta()

    def _write_meta(self) -> None:
        write_json(sidecar(self.path), self.meta, indent=2)  # __init__ claimed it: a new run never replaces one


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` whole or not at all (a reader, or a killed run, never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a target that cannot be replaced (a directory) leaves no stray copy behind
        raise
    return path


def json_text(value, *, indent: int | None = None, **options) -> str:
    """Return `value` as strict JSON (RFC 8259, what JSON.parse accepts): NaN, infinities and pandas' NA as null.

    numpy scalars and arrays become numbers and lists, anything else JSON has no type for (paths, datetimes) its
    str(); every JSON ncbench writes (stdout, sidecars, verdicts, predictions) comes from here.
    """
    return json.dumps(_strict(value), indent=indent, allow_nan=False, **options)


def json_lines(values) -> str:
    """Return one strict JSON object per line (JSON Lines), each line ending in a newline."""
    return "".join(json_text(v) + "\n" for v in values)


def write_json(path: Path, value, *, indent: int = 1) -> Path:
    """Write `value` to `path` as strict JSON, whole or not at all."""
    return write_atomic(path, json_text(value, indent=indent) + "\n")


def _strict(value):
    """Return `value` with only what strict JSON can hold: missing and non-finite numbers as None."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, dict):
        return {_key(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_strict(v) for v in value]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _strict(value.tolist())
    if _is_missing(value):
        return None
    return str(value)


def _key(key):
    return key if isinstance(key, (str, int, float, bool)) or key is None else str(_strict(key))


def _is_missing(value) -> bool:
    """True for pandas' NA and NaT (pandas is only asked when a caller already imported it)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def read_json(path: Path, what: str):
    """Return a JSON file's content, or raise one sentence naming the file and `what` it should be (exit 65)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise NcbenchError(f"{path}: {what} ({err})", EXIT_DATAERR) from None


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def files(paths) -> list[Path]:
    """Return the results CSV files named by `paths` (files, or directories of them), in order."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.glob("*.csv")))
        elif p.exists():
            found.append(p)
        else:
            raise NcbenchError(f"{p}: no such file or directory", EXIT_USAGE)
    return found


def runs_of(paths) -> tuple[dict, dict]:
    """Return ({run_id: sidecar}, {run_id: results file}) of the given files and folders.

    A run's id is the one its sidecar records (the rows carry the same), so a renamed copy keeps it.
    """
    meta, found = {}, {}
    for path in files(paths):
        m = load_meta(path)
        run_id = str(m.get("run_id") or path.stem)
        meta[run_id], found[run_id] = m, path
    return meta, found


def load(*paths) -> "pd.DataFrame":  # noqa: F821 - pandas is imported late
    """Return every row of the given run files (or directories of them) as one DataFrame."""
    import pandas as pd

    found = files(paths)
    if not found:
        raise NcbenchError(f"no results files in {', '.join(map(str, paths))}", EXIT_DATAERR)
    frames = [_load_one(f) for f in found]
    return pd.concat(frames, ignore_index=True)


def _load_one(path: Path):
    import pandas as pd

    meta = load_meta(path)
    if meta.get("schema", SCHEMA) > SCHEMA:
        raise NcbenchError(
            f"{path}: results schema {meta['schema']} is newer than this ncbench reads ({SCHEMA}); upgrade ncbench",
            EXIT_DATAERR,
        )
    try:
        frame = pd.read_csv(path, dtype={"wrong_sources": str, "slowest_host": str}, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise NcbenchError(f"{path}: not an ncbench results file ({err})", EXIT_DATAERR) from None
    for name, since in ADDED_IN.items():
        if name not in frame.columns and meta.get("schema", SCHEMA) < since:
            frame[name] = float("nan")
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise NcbenchError(f"{path}: not an ncbench results file; missing columns {', '.join(missing)}", EXIT_DATAERR)
    for name, kind in RESULT_COLUMNS.items():
        column = frame[name]
        if kind is str:
            frame[name] = column.astype(str)
        elif kind is bool:
            frame[name] = column.astype(str).str.lower().isin(["true", "1"])
        elif kind is int:
            frame[name] = pd.to_numeric(column, errors="coerce").astype("Int64")
        else:
            frame[name] = pd.to_numeric(column, errors="coerce").astype(float)
    return frame[list(RESULT_COLUMNS)]


def load_meta(path) -> dict:
    """Return a run's sidecar metadata ({} when the sidecar is missing)."""
    target = sidecar(Path(path))
    if not target.exists():
        return {}
    return read_json(target, "unreadable metadata")
