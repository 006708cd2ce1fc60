"""nccl-tests output -> ncbench records: every format era, launcher noise, truncation, JSON (-J).

text or JSON of any nccl-tests version -> Imported(rows with RESULT_COLUMNS keys, meta, problems).
Follows the parser recipe in ../shared/reference/nccl-tests.md (second half, §6): strip launcher
prefixes, classify lines, take the schema from the header when there is one, keep complete rows.
"""

import json
import re
from dataclasses import dataclass, field

from .errors import EXIT_DATAERR, EXIT_NOINPUT, NcbenchError

BINARIES = {"all_reduce": "allreduce", "all_gather": "allgather", "reduce_scatter": "reducescatter",
            "broadcast": "broadcast", "reduce": "reduce", "alltoall": "alltoall", "sendrecv": "sendrecv",
            "alltoallv": "alltoallv", "gather": "gather", "scatter": "scatter", "hypercube": "hypercube"}  # fmt: skip
TYPES = {"int8": "int8", "char": "int8", "uint8": "uint8", "int32": "int32", "int": "int32", "uint32": "uint32",
         "int64": "int64", "uint64": "uint64", "half": "half", "float": "float", "double": "double",
         "bfloat16": "bfloat16", "f8e4m3": "f8e4m3", "f8e5m2": "f8e5m2"}  # fmt: skip
# ops whose busbw factor reveals the rank count when no device lines survived: factor -> n
FACTOR_OPS = {"allreduce": lambda f: 2 / (2 - f), "allgather": lambda f: 1 / (1 - f),
              "reducescatter": lambda f: 1 / (1 - f), "alltoall": lambda f: 1 / (1 - f)}  # fmt: skip

PREFIXES = (re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:"), re.compile(r"^\d+:\s"), re.compile(r"^\[\d+\]\s?"))
GLUED_TAG = re.compile(r"\[\d+\]")
DEVICE = re.compile(
    r"Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?(?:Pid\s+\d+\s+)?on\s+(\S+)\s+device\s+(\d+)\s+\[([^\]]+)\]\s*(.*)"
)
VERSION = re.compile(r"nccl-tests version (\S+)")
STARTING = re.compile(r"Collective test (?:starting|concluded):\s*(\S+)")
PREAMBLE = re.compile(r"n[Tt]hreads?:?\s*\d+")
ITERS = re.compile(r"warmup iters:\s*(\d+)\s+iters:\s*(\d+)")
NUMBER = re.compile(r"^(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|N/A|nan|-?inf)$")
STAMP = re.compile(r"^\d{4}-\d\d-\d\d$|^\d\d:\d\d:\d\d$")


# what nccl-tests does not report: per-sample statistics, attribution, p2p peers
DEFAULTS = {"time_us_min": None, "time_us_p50": None, "time_us_p99": None, "time_us_max": None,
            "time_us_std": None, "cv": None, "device_time_us": None, "wrong_sources": "", "slowest_rank": -1,
            "slowest_host": "", "lateness_us": None, "peer_a": -1, "peer_b": -1, "time": ""}  # fmt: skip


@dataclass
class Imported:
    rows: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)


@dataclass
class _Schema:
    """What the last header said: which error column, whether a root column exists, the time unit."""

    wrong: str = "#wrong"  # "#wrong" (a count, 2.13+) | "error" (max deviation, 2.0-2.11) | "res" (v1)
    root: bool = True
    time_scale: float = 1.0  # v1 prints milliseconds
    from_header: bool = False


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


def parse_text(text: str, source: str = "", op: str | None = None) -> Imported:
    """Return the records found in nccl-tests text output; raise NcbenchError (65) if there are none."""
    out = Imported(meta={"source": source, "format": "text"})
    schema = _Schema()
    devices: dict[int, tuple[str, int]] = {}
    name = op or op_from_name(source)
    lines = text.split("\n")
    last_complete = text.endswith("\n")
    tables = 0
    for number, raw in enumerate(lines, 1):
        line = clean(raw)
        stripped = line.strip()
        if not stripped or "NCCL INFO" in line or "NCCL WARN" in line:
            continue
        if match := VERSION.search(line):
            out.meta["nccl_tests_version"] = match.group(1)
        if match := STARTING.search(line):
            name = op or op_from_name(match.group(1)) or name
        if match := DEVICE.search(line):
            devices[int(match.group(1))] = (match.group(2), int(match.group(3)))
            continue
        if PREAMBLE.search(line) and "minBytes" in line:
            if match := ITERS.search(line):
                out.meta["warmup"], out.meta["iters"] = int(match.group(1)), int(match.group(2))
            continue
        if _is_header(stripped):
            schema = _header_schema(stripped)
            tables += 1
            continue
        if stripped.startswith("#") or not stripped[0].isdigit():
            continue
        last_line = number == len(lines) or (number == len(lines) - 1 and lines[-1] == "")
        parsed = _row(stripped, schema, truncated_tail=last_line and not last_complete)
        if isinstance(parsed, str):
            out.problems.append(f"line {number}: {parsed}: {stripped[:60]!r}")
        else:
            out.rows.extend(parsed)
    if not out.rows:
        raise NcbenchError(
            f"{source or 'input'}: no nccl-tests result rows found; is this the output of an nccl-tests *_perf binary?",
            EXIT_DATAERR,
        )
    out.meta["tables"] = tables
    _finish(out, name, devices)
    return out


def _is_header(line: str) -> bool:
    body = line.lstrip("#").split()
    return ("size" in body or "bytes" in body) and "algbw" in body and "busbw" in body


def _header_schema(line: str) -> _Schema:
    body = line.lstrip("#").split()
    wrong = "#wrong" if "#wrong" in body else ("error" if "error" in body else "res")
    return _Schema(wrong=wrong, root="root" in body, time_scale=1000.0 if "res" in body else 1.0, from_header=True)


def _row(line: str, schema: _Schema, truncated_tail: bool):
    """Return two records (out-of-place, in-place) for one data row, or a reason it was skipped."""
    tokens = GLUED_TAG.sub(" ", line).split()
    if len(tokens) < 3 or not (tokens[0].isdigit() and tokens[1].isdigit()) or tokens[2] not in TYPES:
        return "not a result row"
    rest = tokens[3:]
    while rest and STAMP.match(rest[-1]):  # -S timestamps
        rest.pop()
    redop = "none"
    if rest and not NUMBER.match(rest[0]):
        redop = rest.pop(0)
    numbers = rest
    has_root = schema.root if schema.from_header else len(numbers) in (9, 17)
    if schema.from_header and schema.wrong == "error" and len(numbers) in (9, 17):
        has_root = True  # v2.0-2.11 print a rooted op's root in the redop column
    expected = 8 + (1 if has_root else 0)
    if any(not NUMBER.match(t) for t in numbers):
        return "truncated or garbled row"
    if len(numbers) not in (expected, expected + 8) or truncated_tail:
        return "truncated row"
    root = int(float(numbers.pop(0))) if has_root else -1
    base = {"nbytes": int(tokens[0]), "count": int(tokens[1]), "dtype": TYPES[tokens[2]], "redop": redop,
            "root": root}  # fmt: skip
    groups = [numbers[0:4], numbers[4:8]] if len(numbers) == 8 else [numbers[0:4], numbers[8:12]]  # -I: 8 per side
    records = []
    for in_place, (time, algbw, busbw, wrong) in zip((False, True), groups):
        records.append({**base, "in_place": in_place, "time_us": _num(time) * schema.time_scale,
                        "algbw_GBps": _num(algbw), "busbw_GBps": _num(busbw),
                        "wrong": _wrong(wrong, schema.wrong)})  # fmt: skip
    return records


def _num(token: str) -> float:
    return float("nan") if token == "N/A" else float(token)


def _wrong(token: str, kind: str) -> int:
    if token == "N/A" or kind != "#wrong":
        return -1  # 'error'/'res' columns hold a deviation, not a count of wrong elements
    return int(float(token))


def _finish(out: Imported, name: str | None, devices: dict[int, tuple[str, int]]) -> None:
    """Fill the per-run fields every row shares: op, ranks, nodes, GPUs per node."""
    if name is None:
        raise NcbenchError(
            f"{out.meta['source'] or 'input'}: cannot tell which operation this is (no '# Collective test "
            f"starting' line, no *_perf in the file name); name it with --op",
            EXIT_DATAERR,
        )
    hosts = [devices[r][0] for r in sorted(devices)]
    nranks = len(hosts) if hosts else _ranks_from_factor(name, out.rows)
    nodes = list(dict.fromkeys(hosts))
    per_node = {hosts.count(h) for h in nodes}
    out.meta.update(op=name, hosts=nodes, nranks=nranks, nnodes=len(nodes) if nodes else -1,
                    ranks_per_node=per_node.pop() if len(per_node) == 1 else -1)  # fmt: skip
    for row in out.rows:
        row.update(op=name, backend="nccl", nranks=nranks, nnodes=out.meta["nnodes"],
                   ranks_per_node=out.meta["ranks_per_node"], timing="nccl-tests",
                   warmup=out.meta.get("warmup", -1), iters=out.meta.get("iters", -1), samples=1)  # fmt: skip


def _ranks_from_factor(name: str, rows: list[dict]) -> int:
    """Return the rank count implied by busbw / algbw (nccl-tests' factor), or -1."""
    if name not in FACTOR_OPS:
        return -1
    for row in rows:
        if row["algbw_GBps"] and row["algbw_GBps"] > 0.1 and row["busbw_GBps"] > 0:
            factor = row["busbw_GBps"] / row["algbw_GBps"]
            try:
                return max(1, round(FACTOR_OPS[name](factor)))
            except ZeroDivisionError:
                return -1
    return -1


def parse_json(data: dict, source: str = "", op: str | None = None) -> Imported:
    """Return the records in an nccl-tests -J file (v2.17.3+; booleans and root are strings there)."""
    out = Imported(meta={"source": source, "format": "json", "nccl_tests_version": data.get("version")})
    config = data.get("config") or {}
    out.meta["warmup"], out.meta["iters"] = config.get("warmup_iters", -1), config.get("iterations", -1)
    devices = {int(d["rank"]): (str(d.get("hostname", "?")), int(d.get("device", 0))) for d in config.get("devices", [])}
    name = op or op_from_name(source) or op_from_name(" ".join(map(str, data.get("args", []))))
    for result in data.get("results", []):
        base = {"nbytes": int(result["size"]), "count": int(result["count"]), "dtype": TYPES.get(result["type"], result["type"]),
                "redop": result.get("redop") or "none", "root": int(str(result.get("root", -1)).strip() or -1)}  # fmt: skip
        for in_place, key in ((False, "out_of_place"), (True, "in_place")):
            group = result.get(key)
            if not group:
                continue
            time = group.get("time", group.get("cpu_time"))
            wrong = group.get("nwrong")
            out.rows.append({**base, "in_place": in_place, "time_us": _json_num(time),
                             "algbw_GBps": _json_num(group.get("alg_bw")), "busbw_GBps": _json_num(group.get("bus_bw")),
                             "wrong": -1 if wrong in (None, "nan") else int(float(wrong))})  # fmt: skip
    if not out.rows:
        raise NcbenchError(f"{source or 'input'}: an nccl-tests JSON file with no results", EXIT_DATAERR)
    _finish(out, name, devices)
    return out


def _json_num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def parse_file(path, op: str | None = None) -> Imported:
    """Return the records of one nccl-tests log or -J JSON file."""
    from pathlib import Path

    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        raise NcbenchError(f"{path}: no such file to import", EXIT_NOINPUT) from None
    except OSError as err:
        raise NcbenchError(f"{path}: cannot read ({err.strerror})", EXIT_DATAERR) from None
    if text.lstrip().startswith("{"):
        try:
            return parse_json(json.loads(text), path.name, op)
        except json.JSONDecodeError as err:
            raise NcbenchError(f"{path}: looks like JSON but is not ({err})", EXIT_DATAERR) from None
    return parse_text(text, path.name, op)
