"""nccl-tests output -> ncbench records: every format era, launcher noise, truncation, JSON (-J).

text or JSON of any nccl-tests version -> Imported(rows with RESULT_COLUMNS keys, meta, problems).
Lines lose their launcher prefixes (Open MPI --tag-output, srun --label, [rank] tags), are classified
(version, preamble, device, header, data row), and the schema of the rows comes from the header when
there is one; only complete rows are kept (a row that NCCL's own log cut in two is joined again). A new
preamble, device list, header or 'Collective test starting' after rows starts a new run (logs that hold
several jobs, or the interleaved processes of a non-MPI build); device lines count the ranks only when
they list ranks 0..N-1 in one block.

What a log does not say is inferred, never guessed. The operation, when neither the log nor the file
name names it, is the one operation of nccl-tests whose printed columns (redop, root, in-place N/A),
count-to-size relation and busbw/algbw factor fit every row; several fit -> refused, naming them. The
rank count, without '# Rank ... device' lines, is the set of n that every printed (rounded) time,
algbw and busbw allow; one integer or unknown (-1) with the interval kept.

How nccl-tests prints (from its source, per era):
  v1.0        time in ms '%7.3f', bandwidths '%5.2f', header 'bytes N type [op] [root] ... res'
  v2.0-2.11   time '%7.0f' (>= 10000 us) / '%7.1f' (>= 100) / '%7.2f', bandwidths '%6.2f', header
              columns per op (redop only for reductions and alltoall, root only for rooted ops), 'error'
  v2.13-2.17.2  same numbers; redop and root for every op (data movement: 'none' from 2.13.4, empty
              before; sendrecv: its reduction), '#wrong'; N/A in-place for alltoall, sendrecv from 2.13.1
  v2.17.3+    getFloatStr: '%.2f' if it fits 7 (time) or 6 (bandwidth) characters, else '%.1f', '%.0f',
              then '%7.1e' / '%6.0e'
So a printed value with d decimals (or d mantissa decimals and exponent e) lies within 0.5 * 10**(e - d).
algbw = size / time for every op (allgather and reduce_scatter before mid-2020: size * (n-1)/n / time)
and busbw = algbw * factor(n): 2(n-1)/n allreduce; (n-1)/n allgather, reducescatter, alltoall, gather,
scatter (1 for allgather/reducescatter before mid-2020); 1 broadcast, reduce, sendrecv. The count column
is the total element count for allreduce, broadcast, reduce and sendrecv, and per rank (per peer) for
the others, whose size is count * typesize * n. For ncbench's own ops these facts of today's nccl-tests
come from ops.OPS (ncbench computes them as nccl-tests does); this module keeps only nccl-tests' history
and the ops ncbench does not run.
"""

import glob
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import ops
from .errors import EXIT_DATAERR, EXIT_NOINPUT, EXIT_USAGE, NcbenchError

BINARIES = {
    "all_reduce": "allreduce",
    "all_gather": "allgather",
    "reduce_scatter": "reducescatter",
    "broadcast": "broadcast",
    "reduce": "reduce",
    "alltoall": "alltoall",
    "sendrecv": "sendrecv",
    "alltoallv": "alltoallv",
    "gather": "gather",
    "scatter": "scatter",
    "hypercube": "hypercube",
}
TYPES = {**{name: name for name in ops.DTYPES}, "char": "int8", "int": "int32"}  # printed type -> ncbench dtype
TYPE_BYTES = {name: dt.size for name, dt in ops.DTYPES.items()}

PREFIXES = (re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:"), re.compile(r"^\d+:\s"), re.compile(r"^\[\d+\]\s?"))
GLUED_TAG = re.compile(r"\[\d+\]")
NCCL_LOG = re.compile(r"\S*:\d+:\d+ \[\d+\] NCCL (?:INFO|WARN)|NCCL (?:INFO|WARN)")  # host:pid:tid [dev] NCCL INFO
DEVICE = re.compile(
    r"Rank\s+(\d+)\s+(?:Group\s+(\d+)\s+)?(?:Pid\s+\d+\s+)?on\s+(\S+)\s+device\s+(\d+)\s+\[([^\]]+)\]\s*(.*)"
)
VERSION = re.compile(r"nccl-tests version (\S+)")
STARTING = re.compile(r"Collective test starting:\s*(\S+)")
CONCLUDED = re.compile(r"Collective test concluded:\s*(\S+)")
PREAMBLE = re.compile(r"n[Tt]hreads?:?\s*\d+")
PER_PROCESS = re.compile(r"nThreads?\s+(\d+)\s+nGpus\s+(\d+)\s+minBytes")  # nccl-tests' own form, not forks'
ITERS = re.compile(r"warmup iters:\s*(\d+)\s+iters:\s*(\d+)")
FAILURE = re.compile(r"Test (?:CUDA|NCCL) failure.*|Test timeout.*|Invalid number of GPUs.*")
NUMBER = re.compile(r"^(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|N/A|nan|-?inf)$")
STAMP = re.compile(r"^\d{4}-\d\d-\d\d$|^\d\d:\d\d:\d\d$")

# what nccl-tests does not report: per-sample statistics, attribution, p2p peers
DEFAULTS = {
    "time_us_min": None,
    "time_us_p50": None,
    "time_us_p99": None,
    "time_us_max": None,
    "time_us_std": None,
    "cv": None,
    "device_time_us": None,
    "wrong_sources": "",
    "slowest_rank": -1,
    "slowest_host": "",
    "lateness_us": None,
    "peer_a": -1,
    "peer_b": -1,
    "time": "",
}

# The operations an unnamed table may be, and what each prints: ncbench's ops (ops.OPS), then nccl-tests' others.
NOT_IN_NCBENCH = ("gather", "scatter", "hypercube", "alltoallv")  # none of them reduces
CANDIDATES = (*ops.OPS, *NOT_IN_NCBENCH)
REDUCTIONS = {name for name, operation in ops.OPS.items() if operation.reduction}  # print sum, ... as redop
ROOTED = {name for name, operation in ops.OPS.items() if operation.rooted} | {"gather", "scatter"}  # print root >= 0
UNCHECKED_IN_PLACE = {"alltoall", "alltoallv", "sendrecv"}  # in-place #wrong is N/A from 2.13.1
REDOP_COLUMN_V2 = {"allreduce", "reducescatter", "reduce", "alltoall"}  # v2.0-2.11 headers with a redop column
V1_OPS = {"allreduce", "allgather", "reducescatter", "broadcast", "reduce"}
ALLTOALLV_SINCE = (2, 19, 0)
FULL = (1, math.inf)  # any rank count
SLACK = 1e-9  # relative: double arithmetic inside nccl-tests and here


@dataclass(frozen=True)
class Model:
    """How one op's printed numbers relate: busbw/algbw, algbw*time/size, and the count column.

    A relation is top * (n-1)/n, written as its top (2.0: 2(n-1)/n, 1.0: (n-1)/n), or None: 1 (as ops.Op.busbw_top).
    """

    bus_top: float | None  # busbw / algbw
    alg_top: float | None  # algbw * time / size: None, or 1.0 (allgather, reducescatter before 2020; hypercube)
    count: str  # "total" | "per-rank" | "free"
    eras: tuple = ("1", "2.0", "2.13", "unknown")


def _today(operation: ops.Op) -> Model:
    """Return how today's nccl-tests prints one of ncbench's ops: ncbench's busbw factor and count column."""
    probe = operation.layout(16 * 3, 3, 1)  # 3 ranks, one 16-byte block each
    count = "total" if probe.count == probe.nbytes(1) else "per-rank"
    return Model(operation.busbw_top, None, count)


_PER_RANK = Model(1.0, None, "per-rank")
_BEFORE_2020 = Model(None, 1.0, "per-rank", eras=("1", "2.0", "unknown"))  # nccl-tests before June 2020
HISTORY = {"allgather": (_BEFORE_2020,), "reducescatter": (_BEFORE_2020,)}  # older relations of ncbench's ops
NOT_IN_NCBENCH_MODELS = {
    "gather": (_PER_RANK,),
    "scatter": (_PER_RANK,),
    "hypercube": (Model(None, 1.0, "per-rank"),),
    "alltoallv": (Model(1.0, None, "free"),),
}
MODELS = {name: (_today(operation), *HISTORY.get(name, ())) for name, operation in ops.OPS.items()}
MODELS.update(NOT_IN_NCBENCH_MODELS)


@dataclass
class Imported:
    rows: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)


@dataclass(frozen=True)
class Hints:
    """What the user says about a log (--op, --ranks, --gpus-per-node); None = not said."""

    op: str | None = None
    ranks: int | None = None
    gpus_per_node: int | None = None

    def __post_init__(self):
        if self.op is not None and self.op not in BINARIES.values():
            named = op_from_name(self.op)
            if named is None:
                raise NcbenchError(f"--op {self.op!r}: choose one of {', '.join(CANDIDATES)}", EXIT_USAGE)
            object.__setattr__(self, "op", named)
        for flag, value in (("--ranks", self.ranks), ("--gpus-per-node", self.gpus_per_node)):
            if value is not None and value < 1:
                raise NcbenchError(f"{flag} {value}: give a positive count", EXIT_USAGE)
        if self.ranks and self.gpus_per_node and self.ranks % self.gpus_per_node:
            raise NcbenchError(
                f"--ranks {self.ranks} is not a multiple of --gpus-per-node {self.gpus_per_node}", EXIT_USAGE
            )

    def given(self) -> dict:
        said = {"op": self.op, "ranks": self.ranks, "gpus_per_node": self.gpus_per_node}
        return {key: value for key, value in said.items() if value is not None}


@dataclass
class _Schema:
    """What the last header said: which error column, which columns, the time unit."""

    wrong: str = "#wrong"  # "#wrong" (a count, 2.13+) | "error" (max deviation, 2.0-2.11) | "res" (v1)
    root: bool = True
    time_scale: float = 1.0  # v1 prints milliseconds
    from_header: bool = False
    columns: frozenset = frozenset()
    cputime: bool = False  # -C: the time column is enqueue time, not the time algbw came from


@dataclass
class _Line:
    """One data row as printed: what the inference reads."""

    number: int
    nbytes: int
    count: int
    dtype: str
    redop: str | None  # None: no redop token in the row
    root: int | None  # None: no root column
    cells: list  # per placement: (time, algbw, busbw, wrong) tokens
    schema: _Schema


@dataclass
class _Run:
    """One job's output inside a log: its name, devices, rows."""

    name: str | None = None
    name_from: str = "the log"  # or "the file name"
    devices: dict = field(default_factory=dict)  # rank -> (host, device, group)
    lines: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    per_process: int = 0  # nThread * nGpus from the preamble: the rank count is a multiple of it
    warmup: int = -1
    iters: int = -1
    first_line: int = 0
    device_gap: bool = False  # other output between its device lines (interleaved processes): a partial list
    device_repeat: bool = False  # a rank listed twice (several processes of a non-MPI build, each its own job)
    since_devices: bool = False


def op_from_name(text: str) -> str | None:
    """Return the ncbench op for a binary or file name such as 'all_reduce_perf_mpi'."""
    longest_first = sorted(BINARIES, key=len, reverse=True)  # all_reduce before reduce
    for pattern in (r"(?:^|[^a-z]){}_perf", r"(?:^|[^a-z]){}(?:[^a-z]|$)"):  # then a bare name: all_gather_v1.log
        for binary in longest_first:
            if re.search(pattern.format(binary), text):
                return BINARIES[binary]
    return None


def clean(line: str) -> str:
    """Return a line without launcher prefixes (Open MPI --tag-output, srun --label, [rank])."""
    line = line.rstrip("\r\n")
    for prefix in PREFIXES:
        line = prefix.sub("", line)
    return line


# ---------------------------------------------------------------------------------------------- text


def parse_text(
    text: str, source: str = "", op: str | None = None, *, ranks: int | None = None, gpus_per_node: int | None = None
) -> Imported:
    """Return the records found in nccl-tests text output; raise NcbenchError (65) if there are none."""
    return _parse_text(text, source, Hints(op, ranks, gpus_per_node))


def _parse_text(text: str, source: str, hints: Hints) -> Imported:
    out = Imported(meta={"source": source, "format": "text"})
    runs, tables, failure = _scan(text, out)
    runs = [run for run in runs if run.rows]
    if not runs:
        said = (
            f"; the log reports: {failure[:120]}" if failure else "; is this the output of an nccl-tests *_perf binary?"
        )
        raise NcbenchError(f"{source or 'input'}: no nccl-tests result rows found{said}", EXIT_DATAERR)
    out.meta["tables"] = tables
    file_op = op_from_name(source)
    for run in runs:
        if run.name is None and file_op:
            run.name, run.name_from = file_op, "the file name"
    _finish(out, runs, hints)
    return out


def _scan(text: str, out: Imported) -> tuple[list[_Run], int, str]:
    """Return the runs in the text, the number of headers, and the first failure line (or '')."""
    schema, runs, tables, failure = _Schema(), [_Run()], 0, ""
    cut = None  # (line number, text) of a row whose rest may come on the next line (NCCL's log landed inside it)
    lines = text.split("\n")
    last_complete = text.endswith("\n")
    for number, raw in enumerate(lines, 1):
        line = clean(raw)
        if "NCCL INFO" in line or "NCCL WARN" in line:
            head = _row_before_nccl_log(line)  # a row is several writes; NCCL's log can come between them
            cut = (number, head.strip()) if head else cut
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if cut and stripped[0].isdigit() and not _starts_a_row(stripped):
            stripped, cut = f"{cut[1]} {stripped}", None
        elif cut:
            out.problems.append(f"line {cut[0]}: truncated row: {cut[1][:60]!r}")
            cut = None
        if not failure and (match := FAILURE.search(stripped)):
            failure = match.group(0).strip()
        if runs[-1].rows and _starts_a_run(line, stripped, runs[-1]):
            runs.append(_Run(first_line=number))  # another job (or another process of a non-MPI build)
        if _take_description(line, runs[-1], out):
            continue
        if _is_header(stripped):
            schema, tables = _header_schema(stripped), tables + 1
            continue
        if stripped.startswith("#") or not stripped[0].isdigit():
            continue
        last_line = number == len(lines) or (number == len(lines) - 1 and lines[-1] == "")
        parsed = _row(stripped, schema, number, truncated_tail=last_line and not last_complete)
        if parsed == "truncated row" and not last_line:
            cut = (number, stripped)
        elif isinstance(parsed, str):
            out.problems.append(f"line {number}: {parsed}: {stripped[:60]!r}")
        else:
            runs[-1].rows.extend(parsed[0])
            runs[-1].lines.append(parsed[1])
    if cut:
        out.problems.append(f"line {cut[0]}: truncated row: {cut[1][:60]!r}")
    return runs, tables, failure


def _row_before_nccl_log(line: str) -> str:
    """Return the start of a data row that an NCCL INFO/WARN message cut off, or ''."""
    start = NCCL_LOG.search(line).start()
    glued = re.match(r"(?:N/A|[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?)(?=[A-Za-z])", line[start:])  # '0gpu-1-1:...'
    head = line[: start + (glued.end() if glued else 0)]
    return head if _starts_a_row(head) else ""


def _starts_a_row(text: str) -> bool:
    tokens = GLUED_TAG.sub(" ", text).split()
    return len(tokens) >= 3 and tokens[0].isdigit() and tokens[1].isdigit() and tokens[2] in TYPES


def _starts_a_run(line: str, stripped: str, run: _Run) -> bool:
    """Whether a line after rows begins another job's output: version, starting, preamble, header, a new device list."""
    if match := DEVICE.search(line):
        return int(match.group(1)) == 0 or int(match.group(1)) in run.devices
    return bool(
        VERSION.search(line)
        or STARTING.search(line)
        or (PREAMBLE.search(line) and "minBytes" in line)
        or _is_header(stripped)
    )


def _take_description(line: str, run: _Run, out: Imported) -> bool:
    """Record what a version, starting/concluded, device or preamble line says; True for device/preamble lines."""
    if match := VERSION.search(line):
        out.meta["nccl_tests_version"] = match.group(1)
    if match := STARTING.search(line):
        run.name = op_from_name(match.group(1)) or run.name
    if (match := CONCLUDED.search(line)) and run.name is None:
        run.name = op_from_name(match.group(1))
    if match := DEVICE.search(line):
        rank = int(match.group(1))
        run.device_gap |= run.since_devices
        run.device_repeat |= rank in run.devices
        run.devices[rank] = (match.group(3), int(match.group(4)), int(match.group(2) or 0))
        run.since_devices = False
        return True
    run.since_devices = bool(run.devices)
    if PREAMBLE.search(line) and "minBytes" in line:
        if match := ITERS.search(line):
            run.warmup, run.iters = int(match.group(1)), int(match.group(2))
            out.meta["warmup"], out.meta["iters"] = run.warmup, run.iters
        if match := PER_PROCESS.search(line):
            run.per_process = int(match.group(1)) * int(match.group(2))
        return True
    return False


def _is_header(line: str) -> bool:
    body = line.lstrip("#").split()
    return ("size" in body or "bytes" in body) and "algbw" in body and "busbw" in body


def _header_schema(line: str) -> _Schema:
    body = line.lstrip("#").split()
    wrong = "#wrong" if "#wrong" in body else ("error" if "error" in body else "res")
    return _Schema(
        wrong=wrong,
        root="root" in body,
        time_scale=1000.0 if "res" in body else 1.0,
        from_header=True,
        columns=frozenset(body),
        cputime="cputime" in body,
    )


def _row(line: str, schema: _Schema, number: int, truncated_tail: bool):
    """Return (two records (out-of-place, in-place), the row as printed) for one data row, or why it was skipped."""
    tokens = GLUED_TAG.sub(" ", line).split()
    if len(tokens) < 3 or not (tokens[0].isdigit() and tokens[1].isdigit()) or tokens[2] not in TYPES:
        return "not a result row"
    rest = tokens[3:]
    while rest and STAMP.match(rest[-1]):  # -S timestamps
        rest.pop()
    redop = rest.pop(0) if rest and not NUMBER.match(rest[0]) else None
    numbers = rest
    has_root = schema.root if schema.from_header else len(numbers) in (9, 17)
    if schema.from_header and schema.wrong == "error" and len(numbers) in (9, 17):
        has_root = True  # v2.0-2.11 print a rooted op's root in the redop column
    expected = 8 + (1 if has_root else 0)
    if any(not NUMBER.match(t) for t in numbers):
        return "truncated or garbled row"
    if len(numbers) not in (expected, expected + 8) or truncated_tail:
        return "truncated row"
    if has_root and not re.fullmatch(r"[-+]?\d+", numbers[0]):
        return "garbled root column"
    root = int(numbers.pop(0)) if has_root else None
    base = {
        "nbytes": int(tokens[0]),
        "count": int(tokens[1]),
        "dtype": TYPES[tokens[2]],
        "redop": redop or "none",
        "root": -1 if root is None else root,
    }
    groups = [numbers[0:4], numbers[4:8]] if len(numbers) == 8 else [numbers[0:4], numbers[8:12]]  # -I: 8 per side
    records = []
    for in_place, (time, algbw, busbw, wrong) in zip((False, True), groups):
        records.append(
            {
                **base,
                "in_place": in_place,
                "time_us": _num(time) * schema.time_scale,
                "algbw_GBps": _num(algbw),
                "busbw_GBps": _num(busbw),
                "wrong": _wrong(wrong, schema.wrong),
            }
        )
    printed = _Line(
        number, base["nbytes"], base["count"], base["dtype"], redop, root, [tuple(g) for g in groups], schema
    )
    return records, printed


def _num(token: str) -> float:
    return float("nan") if token == "N/A" else float(token)


def _wrong(token: str, kind: str) -> int:
    if token == "N/A" or kind != "#wrong" or not math.isfinite(float(token)):
        return -1  # 'error'/'res' columns hold a deviation, not a count of wrong elements
    return int(float(token))


# ---------------------------------------------------------------------------------------------- JSON


def parse_json(
    data: dict, source: str = "", op: str | None = None, *, ranks: int | None = None, gpus_per_node: int | None = None
) -> Imported:
    """Return the records in an nccl-tests -J file (v2.17.3+; booleans and root are strings there)."""
    return _parse_json(data, source, Hints(op, ranks, gpus_per_node))


def _parse_json(data, source: str, hints: Hints) -> Imported:
    if not isinstance(data, dict):
        raise NcbenchError(
            f"{source or 'input'}: JSON that is not an nccl-tests -J file (no results object)", EXIT_DATAERR
        )
    out = Imported(meta={"source": source, "format": "json", "nccl_tests_version": data.get("version")})
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    run = _Run(warmup=_int(config.get("warmup_iters"), -1), iters=_int(config.get("iterations"), -1))
    run.per_process = _int(config.get("nthreads"), 0) * _int(config.get("ngpus"), 0)
    out.meta["warmup"], out.meta["iters"] = run.warmup, run.iters
    for device in _listed(config.get("devices")):
        try:
            run.devices[int(device["rank"])] = (
                str(device.get("hostname", "?")),
                int(device.get("device", 0)),
                int(device.get("group", 0) or 0),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            out.problems.append(f"device entry {device!r:.60}: not understood")
    run.name = op_from_name(" ".join(map(str, _listed(data.get("args")))))
    if run.name is None and op_from_name(source):
        run.name, run.name_from = op_from_name(source), "the file name"
    for number, result in enumerate(_listed(data.get("results")), 1):
        try:
            _json_result(result, number, run)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            out.problems.append(f"result {number}: not an nccl-tests result: {str(result)[:60]!r}")
    if not run.rows:
        raise NcbenchError(f"{source or 'input'}: an nccl-tests JSON file with no results", EXIT_DATAERR)
    _finish(out, [run], hints)
    return out


def _json_result(result: dict, number: int, run: _Run) -> None:
    redop = str(result.get("redop") or "").strip() or None
    root_text = str(result.get("root", "")).strip()
    root = int(root_text) if root_text else None
    base = {
        "nbytes": int(result["size"]),
        "count": int(result["count"]),
        "dtype": TYPES.get(result["type"], result["type"]),
        "redop": redop or "none",
        "root": -1 if root is None else root,
    }
    time_key = "time"
    cells = []
    for in_place, key in ((False, "out_of_place"), (True, "in_place")):
        group = result.get(key)
        if not group:
            continue
        time_key = "time" if "time" in group else "cpu_time"
        wrong = group.get("nwrong")
        run.rows.append(
            {
                **base,
                "in_place": in_place,
                "time_us": _json_num(group.get(time_key)),
                "algbw_GBps": _json_num(group.get("alg_bw")),
                "busbw_GBps": _json_num(group.get("bus_bw")),
                "wrong": -1 if wrong in (None, "nan") else int(float(wrong)),
            }
        )
        cells.append(tuple(_token(group.get(k)) for k in (time_key, "alg_bw", "bus_bw", "nwrong")))
    schema = _Schema(from_header=True, columns=frozenset({"redop", "root"}), cputime=time_key == "cpu_time")
    if len(cells) == 2:
        run.lines.append(_Line(number, base["nbytes"], base["count"], base["dtype"], redop, root, cells, schema))


def _listed(value) -> list:
    return value if isinstance(value, list) else []


def _json_num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _token(value) -> str:
    """Return a JSON number as the shortest text that reads back the same (never more digits than printed)."""
    if value is None or isinstance(value, bool):
        return "N/A"
    number = _json_num(value)
    return repr(number) if math.isfinite(number) else "N/A"


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# ---------------------------------------------------------------------------------------------- files


def _looks_like_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def _json_text(text: str, source: str, hints: Hints) -> Imported:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise NcbenchError(f"{source}: looks like JSON but is not ({err})", EXIT_DATAERR) from None
    return _parse_json(data, source, hints)


# The formats parse_file tries, in order: (name, looks_like(text) -> bool, parse(text, source, hints) -> Imported).
# The first that claims a file parses it. Other benchmarks' parsers (OSU, IMB) go before the last entry,
# nccl-tests text, which takes anything and refuses, in one sentence, what has no result rows.
def _looks_like_osu(text: str) -> bool:
    from . import osu_imb  # it imports Imported from here: imported late

    return osu_imb.looks_like_osu(text)


def _looks_like_imb(text: str) -> bool:
    from . import osu_imb

    return osu_imb.looks_like_imb(text)


def _osu(text: str, source: str, hints: Hints) -> Imported:
    """One OSU benchmark's output; --ranks says what OSU never prints (else the file name's _n4)."""
    from . import osu_imb

    return _given(osu_imb.parse_osu(text, source, nranks=hints.ranks), hints)


def _imb(text: str, source: str, hints: Hints) -> Imported:
    """Every benchmark x #processes block of an IMB-MPI1 file, as one import with a run per block."""
    from . import osu_imb

    blocks = osu_imb.parse_imb(text, source)
    first = blocks[0].meta
    meta = {k: first[k] for k in ("source", "format", "tool", "imb_version") if k in first}
    meta.update(
        op=first["op"],
        nranks=first["nranks"],
        nnodes=-1,
        ranks_per_node=-1,
        runs=[{**b.meta, "rows": len(b.rows)} for b in blocks],
    )
    rows = [row for b in blocks for row in b.rows]
    return _given(Imported(rows, meta, [p for b in blocks for p in b.problems]), hints)


def _given(imported: Imported, hints: Hints) -> Imported:
    """Apply --gpus-per-node to OSU/IMB rows (neither tool prints nodes); --op is refused: the output names it."""
    if hints.op is not None and hints.op != imported.meta["op"]:
        raise NcbenchError(
            f"{imported.meta['source']}: the output is {imported.meta['tool']} "
            f"{imported.meta['op']}; --op {hints.op} contradicts it",
            EXIT_DATAERR,
        )
    if hints.gpus_per_node:
        for facts in [imported.meta, *imported.meta.get("runs", [])]:
            if facts.get("nranks", -1) > 0 and facts["nranks"] % hints.gpus_per_node == 0:
                facts.update(nnodes=facts["nranks"] // hints.gpus_per_node, ranks_per_node=hints.gpus_per_node)
        for row in imported.rows:
            if row["nranks"] > 0 and row["nranks"] % hints.gpus_per_node == 0:
                row.update(nnodes=row["nranks"] // hints.gpus_per_node, ranks_per_node=hints.gpus_per_node)
    return imported


FORMATS = [  # (name, does the text look like it, parse(text, source, hints)); the last takes whatever is left
    ("nccl-tests JSON", _looks_like_json, _json_text),
    ("OSU micro-benchmarks", _looks_like_osu, _osu),
    ("Intel MPI Benchmarks", _looks_like_imb, _imb),
    ("nccl-tests text", lambda text: True, _parse_text),
]


def parse_file(
    path,
    op: str | None = None,
    *,
    ranks: int | None = None,
    gpus_per_node: int | None = None,
    hints: Hints | None = None,
) -> Imported:
    """Return the records of one benchmark log (nccl-tests text or -J JSON, or another entry of FORMATS)."""
    hints = hints or Hints(op, ranks, gpus_per_node)
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        raise NcbenchError(f"{path}: no such file to import", EXIT_NOINPUT) from None
    except OSError as err:
        raise NcbenchError(f"{path}: cannot read ({err.strerror})", EXIT_DATAERR) from None
    for _name, looks_like, parse in FORMATS:
        if looks_like(text):
            return parse(text, path.name, hints)
    raise NcbenchError(f"{path}: not a benchmark log ncbench reads", EXIT_DATAERR)  # unreachable: text takes all


def expand(paths) -> tuple[list[Path], list[tuple[Path, NcbenchError]]]:
    """Return (files, refusals) for import arguments: files, directories (their files), quoted glob patterns."""
    files, refused = [], []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            files.extend(inside)
            if not inside:
                refused.append((path, NcbenchError(f"{path}: an empty directory", EXIT_NOINPUT)))
        elif path.exists() or not glob.has_magic(str(path)):
            files.append(path)  # a missing file is refused by parse_file, with its own sentence
        else:
            matched = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
            files.extend(matched)
            if not matched:
                refused.append((path, NcbenchError(f"{path}: no files match", EXIT_NOINPUT)))
    return list(dict.fromkeys(files)), refused


def read_all(files, hints: Hints) -> tuple[list[Imported], list[tuple[Path, NcbenchError]]]:
    """Return (what each readable file gave, (file, reason) for each refused one)."""
    parsed, refused = [], []
    for path in files:
        try:
            parsed.append(parse_file(path, hints=hints))
        except NcbenchError as err:
            refused.append((Path(path), err))
    return parsed, refused


@dataclass(frozen=True)
class Written:
    """What `write_run` did: the results file (None when no file could be read), what each file gave, refusals."""

    target: Path | None
    parsed: list  # [Imported]
    refused: list  # [(path, NcbenchError)]: files and patterns that gave nothing
    rows: int


def write_run(logs, *, out: Path | None = None, hints: "Hints | None" = None, force: bool = False) -> Written:
    """Read nccl-tests outputs (files, folders, globs) into one ncbench results file with a sidecar naming them.

    `out` defaults to results/runs/<first log>-import.csv and is never overwritten without `force`; a refused
    file does not stop the others, and nothing is written when none could be read.
    """
    from . import records

    files, refused = expand(logs)
    target = records.claim(out or records.RUNS_DIR / f"{(files or logs)[0].stem}-import.csv", force) if files else None
    parsed, unread = read_all(files, hints or Hints())
    refused += unread
    if not parsed:
        return Written(None, [], refused, 0)
    meta = {
        "command": "import",
        "date": records.now_iso(),
        "sources": [p.meta for p in parsed],
        "problems": [f"{p.meta['source']}: {problem}" for p in parsed for problem in p.problems],
        "refused": [refusal(path, err) for path, err in refused],
    }
    writer = records.RunWriter(target, {"run_id": target.stem, **meta}, force=force)
    rows = 0
    for imported in parsed:
        for row in imported.rows:
            writer.append({**DEFAULTS, **row, "run_id": target.stem})
            rows += 1
    writer.finish(status="complete", rows=rows)
    return Written(target, parsed, refused, rows)


def refusal(path: Path, err: NcbenchError) -> str:
    """Return 'FILE: reason' for a refused file, naming the file once, as the user wrote it."""
    message = str(err)
    for said in (f"{path}: ", f"{path.name}: "):
        if message.startswith(said):
            return f"{path}: {message[len(said) :]}"
    return f"{path}: {message}"


# ---------------------------------------------------------------------------------------------- what a run is


def _finish(out: Imported, runs: list[_Run], hints: Hints) -> None:
    """Decide each run's op, ranks, nodes and GPUs per node; fill the per-run fields of its rows."""
    version = _version(out.meta.get("nccl_tests_version"))
    described = []
    for run in runs:
        where = out.meta["source"] or "input"
        if len(runs) > 1:
            where += f" (the run from line {run.first_line})"
        facts = _describe(run, where, hints, version, out.meta.get("format") == "json")
        described.append(facts)
        for row in run.rows:
            row.update(
                op=facts["op"],
                backend="nccl",
                nranks=facts["nranks"],
                nnodes=facts["nnodes"],
                ranks_per_node=facts["ranks_per_node"],
                timing="nccl-tests",
                warmup=run.warmup,
                iters=run.iters,
                samples=1,
            )
        out.rows.extend(run.rows)
    out.meta.update(_common(described))
    if len(described) > 1:
        out.meta["runs"] = described
    if hints.given():
        out.meta["given_by_user"] = hints.given()


def _common(described: list[dict]) -> dict:
    """Return the file-level op, ranks, nodes: each run's own when they agree, else mixed (-1)."""
    first = dict(described[0])
    first.pop("rows", None)
    for key in ("op", "nranks", "nnodes", "ranks_per_node"):
        values = list(dict.fromkeys(facts[key] for facts in described))
        if len(values) > 1:
            first[key] = ", ".join(values) if key == "op" else -1
    return first


def _version(text) -> tuple | None:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", str(text or ""))
    return tuple(int(g or 0) for g in match.groups()) if match else None


def _era(run: _Run, version: tuple | None, is_json: bool) -> str:
    """Return the format era of a run's rows: '1', '2.0' (2.0-2.11), '2.13' (2.13+) or 'unknown'."""
    if is_json or (version and version >= (2, 13)):
        return "2.13"
    headers = {line.schema.wrong for line in run.lines if line.schema.from_header}
    if headers:
        return {"#wrong": "2.13", "error": "2.0", "res": "1"}[min(headers)]
    if any(line.root == -1 or line.redop == "none" for line in run.lines):
        return "2.13"  # only 2.13+ print root -1 or redop 'none'
    return "unknown"


def _describe(run: _Run, where: str, hints: Hints, version, is_json: bool) -> dict:
    """Return the run's op, rank count (or interval), nodes, and where each came from."""
    era = _era(run, version, is_json)
    doubt = _device_doubt(run)
    if doubt:
        run.devices = {}  # counted from the rows instead
    evidence = _Evidence(run, era, version)
    evidence.notes += [doubt] if doubt else []
    facts = {"rows": len(run.rows)}
    facts.update(_which_op(run, where, hints, evidence))
    facts.update(_rank_count(run, where, hints, evidence, facts["op"]))
    facts.update(_nodes(run, where, hints, facts["nranks"]))
    if evidence.notes:
        facts["notes"] = evidence.notes
    return facts


def _device_doubt(run: _Run) -> str:
    """Return why the device lines cannot give the rank count (not ranks 0..N-1 in one block), or ''."""
    if not run.devices:
        return ""
    listed = len(run.devices)
    if run.device_gap or set(run.devices) != set(range(listed)):
        return f"the device lines ({listed} ranks) are cut or interleaved with other output; ranks from the rows"
    if run.per_process > 1 and listed % run.per_process:
        return f"{listed} device lines, but {run.per_process} ranks per process; ranks from the rows"
    return ""


def _which_op(run: _Run, where: str, hints: Hints, evidence: "_Evidence") -> dict:
    """Return {op, op_from, ...}: as said (--op, the log, its file name), else the one op every row fits."""
    if hints.op:
        return {"op": hints.op, "op_from": "--op"}
    if run.name:
        return {"op": run.name, "op_from": run.name_from}
    verdicts = {op: evidence.judge(op, shape=True) for op in CANDIDATES}
    fits = [op for op, (fault, _) in verdicts.items() if fault is None]
    if hints.ranks and not run.devices:
        within = [op for op in fits if _holds(verdicts[op][1], hints.ranks)]
        if fits and not within:
            ranges = "; ".join(f"{op} at {_range_text(verdicts[op][1])}" for op in fits)
            raise NcbenchError(
                f"{where}: the rows fit {ranges} ranks, not --ranks {hints.ranks}; check --ranks", EXIT_DATAERR
            )
        fits = within
    if not fits:
        raise NcbenchError(
            f"{where}: the rows fit no nccl-tests operation (no line names it, and its columns, "
            f"counts and busbw/algbw rule each one out); name it with --op",
            EXIT_DATAERR,
        )
    if len(fits) > 1:
        names = ", ".join(fits[:-1]) + f" or {fits[-1]}"
        raise NcbenchError(
            f"{where}: the table could be {names} (no line names the operation, and the rows fit "
            f"each); name it with --op {fits[0]} (or another)",
            EXIT_DATAERR,
        )
    excluded = {op: fault for op, (fault, _) in verdicts.items() if fault}
    return {
        "op": fits[0],
        "op_from": "inferred",
        "op_inferred_from": sorted(set(excluded.values())),
        "op_excluded": excluded,
    }


def _holds(interval, n: int) -> bool:
    return interval is None or interval[0] <= n <= interval[1]


def _range_text(interval) -> str:
    lo, hi = interval
    if lo == hi:
        return str(lo)
    return f"≥ {lo}" if math.isinf(hi) else f"{lo}–{hi}"


def _group_ranks(devices: dict) -> list[int]:
    """Return the ranks of rank 0's communicator (NCCL_TESTS_SPLIT prints a Group per rank; rank 0 prints rows)."""
    first = devices[min(devices)][2]
    return sorted(rank for rank, (_, _, group) in devices.items() if group == first)


def _rank_count(run: _Run, where: str, hints: Hints, evidence: "_Evidence", op: str) -> dict:
    """Return {nranks, nranks_from[, nranks_interval]}: device lines, else --ranks, else the rows' one integer."""
    fault, interval = evidence.judge(op, shape=False)
    if run.devices:
        listed = len(_group_ranks(run.devices))
        if hints.ranks and hints.ranks != listed:
            raise NcbenchError(
                f"{where}: the log's device lines list {listed} ranks, but --ranks {hints.ranks}; "
                "drop --ranks or check the file",
                EXIT_DATAERR,
            )
        return {"nranks": listed, "nranks_from": "device lines"}
    if fault is None and interval is not None:
        interval = _multiple_of(interval, run.per_process)
    if hints.ranks:
        if fault is None and interval is not None and not _holds(interval, hints.ranks):
            said = f"the rows' {_rank_evidence(op, evidence.era)} put {op} at {_range_text(interval)} ranks"
            raise NcbenchError(f"{where}: {said}; --ranks {hints.ranks} contradicts them", EXIT_DATAERR)
        return {"nranks": hints.ranks, "nranks_from": "--ranks"}
    if fault is not None:
        evidence.notes.append(f"the rows do not fit {op}'s formulas at any rank count ({fault}); ranks unknown")
        return {"nranks": -1, "nranks_from": None, "nranks_interval": [1, None]}
    if interval is None:
        evidence.notes.append("the rows disagree on the rank count (rows of several jobs?); ranks unknown")
        return {"nranks": -1, "nranks_from": None, "nranks_interval": [1, None]}
    if interval[0] == interval[1]:
        return {"nranks": interval[0], "nranks_from": f"the rows' {_rank_evidence(op, evidence.era)}"}
    return {"nranks": -1, "nranks_from": None, "nranks_interval": [interval[0], _json_bound(interval[1])]}


def _rank_evidence(op: str, era: str) -> str:
    counts = era != "1" and all(model.count == "per-rank" for model in MODELS.get(op, ()))
    return "count/size" if counts else "busbw/algbw"


def _multiple_of(interval, step: int):
    """Return the interval narrowed to multiples of `step` (ranks = processes x threads x GPUs), if any lie in it."""
    if step <= 1 or math.isinf(interval[1]):
        return interval
    lo, hi = -(-interval[0] // step) * step, interval[1] // step * step
    return (lo, hi) if lo <= hi else interval


def _json_bound(value):
    return None if math.isinf(value) else int(value)


def _nodes(run: _Run, where: str, hints: Hints, nranks: int) -> dict:
    """Return {hosts, nnodes, ranks_per_node}: from the device lines' hosts, else from --gpus-per-node."""
    per = hints.gpus_per_node
    if run.devices and not run.device_repeat:  # a repeated rank: several jobs' lists, whose hosts do not add up
        ranks = _group_ranks(run.devices)
        hosts = [run.devices[rank][0] for rank in ranks]
        nodes = list(dict.fromkeys(hosts))
        counts = sorted({hosts.count(h) for h in nodes})
        if per and counts != [per]:
            placed = " and ".join(map(str, counts))
            raise NcbenchError(
                f"{where}: the log's device lines place {placed} ranks on each node, but "
                f"--gpus-per-node {per}; drop it or check the file",
                EXIT_DATAERR,
            )
        return {"hosts": nodes, "nnodes": len(nodes), "ranks_per_node": counts[0] if len(counts) == 1 else -1}
    if per and nranks > 0 and nranks % per:
        raise NcbenchError(f"{where}: {nranks} ranks cannot be spread evenly at --gpus-per-node {per}", EXIT_DATAERR)
    if per:
        return {"hosts": [], "nnodes": nranks // per if nranks > 0 else -1, "ranks_per_node": per}
    return {"hosts": [], "nnodes": -1, "ranks_per_node": -1}


# ---------------------------------------------------------------------------------------------- the evidence


class _Evidence:
    """What a run's printed rows allow: for an op, whether every row fits it, and the rank counts they allow."""

    def __init__(self, run: _Run, era: str, version):
        self.run, self.era, self.version, self.notes = run, era, version, []
        self.known = (len(_group_ranks(run.devices)),) * 2 if run.devices else FULL
        self.use_time = not any(line.schema.cputime for line in run.lines)
        self.lines = self._consistent_lines()

    def _consistent_lines(self) -> list[_Line]:
        """Return the rows whose time, algbw and size agree (others are garbled); all when none agree (-C)."""
        if not self.use_time:
            return list(self.run.lines)
        agree = [line for line in self.run.lines if _time_fits_any(line)]
        if not agree:
            self.use_time = False
            self.notes.append("no row's time matches size/algbw (cputime, -C?); times not used")
            return list(self.run.lines)
        skipped = [line.number for line in self.run.lines if line not in agree]
        if skipped:
            self.notes.append(
                f"line(s) {', '.join(map(str, skipped[:5]))}: time, algbw and size disagree; "
                "not used to infer the op or ranks"
            )
        return agree

    def judge(self, op: str, shape: bool):
        """Return (None or the first evidence that rules `op` out, the rank interval every row allows or None)."""
        if shape and (fault := self._shape_fault(op)):
            return fault, None
        faults, hull, fitted = [], None, False
        for model in MODELS.get(op, ()):
            if self.era not in model.eras:
                continue
            fault, joint = self._model_ranks(model)
            if fault:
                faults.append(fault)
                continue
            hull = joint if not fitted else _hull(hull, joint)
            fitted = True
        if not fitted:
            return (faults[0] if faults else "nccl-tests era"), None
        if op == "hypercube" and hull is not None and 1 << (hull[0] - 1).bit_length() > hull[1]:
            return "power-of-two rank count", None  # hypercube_perf skips any other rank count
        return None, hull

    def _shape_fault(self, op: str) -> str | None:
        if op == "alltoallv" and not (self.version and self.version >= ALLTOALLV_SINCE):
            return "nccl-tests era"
        if self.era == "1" and op not in V1_OPS:
            return "nccl-tests era"
        for line in self.lines:
            fault = _columns_fault(op, line, self.era)
            if fault:
                return fault
        return None

    def _model_ranks(self, model: Model):
        """Return (fault or None, the joint rank interval of every row under `model` or None if they disagree)."""
        joint = self.known
        for line in self.lines:
            allowed = _meet(_line_ranks(model, line, self.era, self.use_time), self.known)
            if allowed is None:
                return _line_fault(model, line, self.era, self.use_time, self.known), None
            joint = _meet(joint, allowed)
        return None, joint


def _columns_fault(op: str, line: _Line, era: str) -> str | None:
    """Return the printed column that rules `op` out for this row (redop, root, in-place N/A, header), or None."""
    named = line.redop is not None and line.redop != "none"
    if op in REDUCTIONS:
        fits = named
    elif op == "sendrecv":
        fits = named or (line.redop is None and era != "2.13")  # sendrecv prints its reduction from 2.13
    elif op == "hypercube":
        fits = line.redop is None
    else:
        fits = not named
    if not fits:
        return "redop column"
    if (line.root is not None and line.root >= 0) != (op in ROOTED):
        return "root column"
    oop_na, ip_na = (cell[3] == "N/A" for cell in line.cells)
    if ip_na and not oop_na and op not in UNCHECKED_IN_PLACE:
        return "in-place #wrong N/A"
    if era == "2.13" and not ip_na and not oop_na and op in UNCHECKED_IN_PLACE:
        return "in-place #wrong checked"
    return _header_fault(op, line.schema)


def _header_fault(op: str, schema: _Schema) -> str | None:
    """v2.0-2.11 and v1 headers name a redop (op) and root column only for the ops that print one."""
    if not schema.from_header or schema.wrong == "#wrong":
        return None
    if schema.wrong == "error":
        expected = (op in REDOP_COLUMN_V2, op in ROOTED)
        return None if expected == ("redop" in schema.columns, "root" in schema.columns) else "header columns"
    expected = (op in REDUCTIONS, op in ROOTED & V1_OPS)
    return None if expected == ("op" in schema.columns, "root" in schema.columns) else "header columns"


def _line_fault(model: Model, line: _Line, era: str, use_time: bool, known) -> str:
    """Return which relation of `model` the row breaks first: count/size, time/algbw/size, busbw/algbw."""
    allowed = _meet(_count_ranks(model, line, era), known)
    if allowed is None:
        return "count/size"
    for cell in line.cells if use_time else ():
        allowed = _meet(allowed, _time_ranks(model, line.nbytes, cell, line.schema))
        if allowed is None:
            return "time/algbw/size"
    return "busbw/algbw"


def _line_ranks(model: Model, line: _Line, era: str, use_time: bool):
    """Return the rank interval one row allows under `model`, or None."""
    allowed = _count_ranks(model, line, era)
    for cell in line.cells:
        if allowed is None:
            return None
        if use_time:
            allowed = _meet(allowed, _time_ranks(model, line.nbytes, cell, line.schema))
        allowed = _meet(allowed, _bus_ranks(model, line.nbytes, cell, line.schema, use_time))
    return allowed


def _count_ranks(model: Model, line: _Line, era: str):
    """size = count * typesize (total counts) or count * typesize * n (per-rank counts, not trusted for v1 logs)."""
    size = TYPE_BYTES.get(line.dtype)
    if model.count == "free" or size is None or (era == "1" and model.count == "per-rank"):
        return FULL
    if model.count == "total":
        return FULL if line.nbytes == line.count * size else None
    if line.count == 0:
        return FULL
    ranks, rest = divmod(line.nbytes, line.count * size)
    return (ranks, ranks) if not rest and ranks >= 1 else None


def _bounds(token: str, scale: float = 1.0):
    """Return (low, high) of the true value behind a printed number, from the digits printed; None for N/A."""
    if not NUMBER.match(token) or token in ("N/A", "nan", "inf", "-inf"):
        return None
    mantissa, _, exponent = token.lower().partition("e")
    value = float(token)
    if not math.isfinite(value) or abs(int(exponent or 0)) > 300:
        return None
    half = 0.5 * 10.0 ** (int(exponent or 0) - len(mantissa.partition(".")[2]))
    slack = abs(value) * SLACK
    return max(0.0, value - half - slack) * scale, (value + half + slack) * scale


def _algbw(nbytes: int, cell, schema: _Schema, use_time: bool):
    """Return the bounds of algbw (GB/s): printed, narrowed by size/time when algbw = size/time."""
    algbw = _bounds(cell[1])
    time = _bounds(cell[0], schema.time_scale)
    if algbw is None or time is None or not use_time:
        return algbw
    from_time = (
        nbytes / 1e3 / time[1] if time[1] > 0 else math.inf,
        nbytes / 1e3 / time[0] if time[0] > 0 else math.inf,
    )
    lo, hi = max(algbw[0], from_time[0]), min(algbw[1], from_time[1])
    return (lo, hi) if lo <= hi else algbw


def _time_ranks(model: Model, nbytes: int, cell, schema: _Schema):
    """algbw * time / size is 1, or (n-1)/n (allgather, reducescatter before 2020; hypercube)."""
    algbw, time = _bounds(cell[1]), _bounds(cell[0], schema.time_scale)
    if algbw is None or time is None or nbytes == 0:
        return FULL
    ratio = (algbw[0] * time[0] * 1e3 / nbytes, algbw[1] * time[1] * 1e3 / nbytes)
    return _ranks_from_factor(model.alg_top, ratio)


def _time_fits_any(line: _Line) -> bool:
    """Whether a row's time, algbw and size fit algbw * time / size in [1/2, 1] (every model's range)."""
    for cell in line.cells:
        algbw, time = _bounds(cell[1]), _bounds(cell[0], line.schema.time_scale)
        if algbw is None or time is None or line.nbytes == 0 or algbw[0] == 0:
            continue
        lo, hi = algbw[0] * time[0] * 1e3 / line.nbytes, algbw[1] * time[1] * 1e3 / line.nbytes
        if hi < 0.5 or lo > 1:
            return False
    return True


def _bus_ranks(model: Model, nbytes: int, cell, schema: _Schema, use_time: bool):
    """busbw / algbw = the op's factor(n)."""
    busbw = _bounds(cell[2])
    algbw = _algbw(nbytes, cell, schema, use_time and model.alg_top is None)
    if busbw is None or algbw is None:
        return FULL
    if algbw[1] <= 0:
        return FULL if busbw[0] <= 0 else None
    ratio = (busbw[0] / algbw[1], busbw[1] / algbw[0] if algbw[0] > 0 else math.inf)
    return _ranks_from_factor(model.bus_top, ratio)


def _ranks_from_factor(top: float | None, ratio):
    """Return the integer n >= 1 whose factor(n) = top * (n-1)/n (None: 1) lies in `ratio`, as (lo, hi), or None."""
    lo, hi = ratio
    if top is None:
        return FULL if lo <= 1 <= hi else None
    if hi < 0 or lo >= top:
        return None
    n_lo = 1 / (1 - max(lo, 0.0) / top)
    n_hi = 1 / (1 - hi / top) if hi < top else math.inf
    return _integers(n_lo, n_hi)


def _integers(lo: float, hi: float):
    first = max(1, math.ceil(lo * (1 - SLACK)))
    last = hi if math.isinf(hi) else math.floor(hi * (1 + SLACK))
    return (first, last) if first <= last else None


def _meet(a, b):
    if a is None or b is None:
        return None
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return (lo, hi) if lo <= hi else None


def _hull(a, b):
    if a is None or b is None:
        return None
    return min(a[0], b[0]), max(a[1], b[1])


# ---------------------------------------------------------------------------------------------- what to print


# evidence as the summary line names it ('' = not worth a word there; the sidecar keeps every name)
SHOWN = {
    "redop column": "redop",
    "root column": "root",
    "in-place #wrong N/A": "in-place #wrong",
    "in-place #wrong checked": "in-place #wrong",
    "header columns": "header",
    "nccl-tests era": "",
    "power-of-two rank count": "",
}


def summary_lines(imported: Imported) -> list[str]:
    """Return one line per distinct run of a file: rows, op (and how it was known), ranks, nodes."""
    m = imported.meta
    tool = m.get("tool", "nccl-tests")
    version = m.get("nccl_tests_version") or m.get("osu_version") or m.get("imb_version")
    version = f"{tool} {version}" if version else tool
    skipped = f"{len(imported.problems)} line(s) skipped"
    groups: dict = {}
    for facts in m.get("runs") or [{**m, "rows": len(imported.rows)}]:
        key = (facts["op"], facts["nranks"], str(facts.get("nranks_interval")), facts["nnodes"])
        groups.setdefault(key, {**facts, "rows": 0})["rows"] += facts["rows"]
    return [f"{m['source']}: {_run_text(facts, version)}; {skipped}" for facts in groups.values()]


def _run_text(facts: dict, version: str) -> str:
    op = facts["op"]
    if facts.get("op_from") == "inferred":
        shown = dict.fromkeys(SHOWN.get(name, name) for name in facts.get("op_inferred_from") or [])
        op += f", inferred from {', '.join(name for name in shown if name) or 'the table'}"
    nodes = facts["nnodes"] if facts["nnodes"] > 0 else "?"
    given = " (given)" if facts.get("nranks_from") == "--ranks" else ""
    if facts["nranks"] > 0:
        return f"{facts['rows']} rows of {op} ({version}, {facts['nranks']} ranks{given} on {nodes} node(s))"
    lo, hi = facts.get("nranks_interval") or [1, None]
    span = "unknown" if lo <= 1 and hi is None else _range_text((lo, math.inf if hi is None else hi))
    return f"{facts['rows']} rows of {op} ({version}); ranks {span} (not stated in the log); pass --ranks"


def notes(imported: Imported) -> list[str]:
    """Return what the import noticed beyond skipped lines: rows not used for inference, unknown ranks."""
    runs = imported.meta.get("runs") or [imported.meta]
    return [note for facts in runs for note in facts.get("notes", [])]
