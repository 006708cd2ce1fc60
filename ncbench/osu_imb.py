"""OSU micro-benchmarks and Intel MPI Benchmarks (IMB-MPI1) output -> ncbench records.

OSU 5.x-7.x text of osu_latency, osu_bw, osu_bibw, osu_allreduce, osu_allgather, osu_reduce_scatter, osu_bcast,
osu_alltoall (plain, -f full statistics, -z tail latencies, -T all, -c validation) -> one Imported;
IMB-MPI1 text (any number of benchmarks and #processes blocks) -> one Imported per benchmark x #processes block.
Rows carry the RESULT_COLUMNS of records.py. Sizes become ncbench's (nccl-tests') size, the larger of the send
and receive buffer per rank (SIZES says, per benchmark, what the tool prints and where that was read). Each
tool's statistic stays what it is, named in row["timing"] and meta["statistic"]: OSU averages the ranks' mean
times, IMB prints the fastest (t_min), slowest (t_max) and average (t_avg) rank's mean, while ncbench's own
time_us is the slowest rank's time per sample, averaged over samples. Nodes are -1: neither tool prints them.
"""

import re
from dataclasses import dataclass

from . import ops
from .errors import EXIT_DATAERR, NcbenchError
from .importers import Imported
from .measure.p2p import TESTS  # ncbench p2p's test names: its rows' op
from .records import RESULT_COLUMNS


@dataclass(frozen=True)
class Sizing:
    """What a benchmark's size column means, and how it becomes ncbench's nbytes."""

    op: str  # ncbench op
    per_rank_block: bool  # the tool prints one rank's block: nbytes = nranks x printed size
    printed: str  # what the printed size is
    source: str  # where that was read: the tool's source file and the call that fixes the buffers


# Read in OSU 5.3, 6.2, 7.2 and 7.4 (identical in all four) and in IMB-MPI1 2018 Update 1, 2019 Update 6 and 2021.11.
SIZES = {
    "osu_latency": Sizing("latency", False, "message", "osu_latency.c: MPI_Send(s_buf, size, ...)"),
    "osu_bw": Sizing("bw", False, "message", "osu_bw.c: MPI_Isend(s_buf, size, ...) x window"),
    "osu_bibw": Sizing("bibw", False, "message each way", "osu_bibw.c: MPI_Isend/MPI_Irecv(size) x window"),
    "osu_allreduce": Sizing(
        "allreduce",
        False,
        "send = receive buffer",
        "osu_allreduce.c: MPI_Allreduce(sendbuf, recvbuf, size / type size, ...)",
    ),
    "osu_allgather": Sizing(
        "allgather",
        True,
        "send block; receive buffer = nranks x size",
        "osu_allgather.c: MPI_Allgather(sendbuf, n, ..., recvbuf, n, ...), n = size / type size; "
        "recvbuf of max_message_size * numprocs",
    ),
    "osu_reduce_scatter": Sizing(
        "reducescatter",
        False,
        "whole send buffer; each rank receives about size / nranks",
        "osu_reduce_scatter.c: recvcounts[i] = portion (+1 for the remainder), portion = (size / type size) / numprocs",
    ),
    "osu_bcast": Sizing("broadcast", False, "buffer", "osu_bcast.c: MPI_Bcast(buffer, size / type size, ..., 0, ...)"),
    "osu_alltoall": Sizing(
        "alltoall",
        True,
        "block per peer; send = receive buffer = nranks x size",
        "osu_alltoall.c: MPI_Alltoall(sendbuf, n, ..., recvbuf, n, ...), n = size / type size; "
        "buffers of max_message_size * numprocs",
    ),
    "PingPong": Sizing("latency", False, "message", "IMB_pingpong.c: MPI_Send(size), time scaled by 1/2"),
    "Sendrecv": Sizing(
        "sendrecv",
        False,
        "message to the right neighbour (and one from the left)",
        "IMB_sendrecv.c: MPI_Sendrecv(size to right, size from left)",
    ),
    "Allreduce": Sizing(
        "allreduce",
        False,
        "send = receive buffer",
        "IMB_allreduce.c: MPI_Allreduce(s_buffer, r_buffer, size / red type size, ...)",
    ),
    "Allgather": Sizing(
        "allgather",
        True,
        "send block; receive buffer = nranks x #bytes",
        "IMB_allgather.c: MPI_Allgather(s_num = size / type size, r_num = size / type size); "
        "MPI1_benchmark.cpp: SENDBUF_SIZE_I, RECVBUF_SIZE_NP_I",
    ),
    "Reduce_scatter": Sizing(
        "reducescatter",
        True,
        "block each rank receives; send buffer = nranks x #bytes",
        "IMB_reduce_scatter.c (2019 Update 2 and later): reccnt[i] = size / type size; "
        "MPI1_benchmark.cpp: SENDBUF_SIZE_NP_I, RECVBUF_SIZE_I",
    ),
    "Reduce_scatter<2019u2": Sizing(
        "reducescatter",
        False,
        "whole send buffer, split among the ranks",
        "IMB_reduce_scatter.c (2018 to 2019 Update 1): reccnt[i] from IMB_get_rank_portion(i, num_procs, size, ...)",
    ),
    "Bcast": Sizing("broadcast", False, "buffer", "IMB_bcast.c: MPI_Bcast(bc_buf, size / type size, ..., root, ...)"),
    "Alltoall": Sizing(
        "alltoall",
        True,
        "block per peer; send = receive buffer = nranks x #bytes",
        "IMB_alltoall.c: MPI_Alltoall(s_num = size / type size, r_num); "
        "MPI1_benchmark.cpp: SENDBUF_SIZE_NP_I, RECVBUF_SIZE_NP_I",
    ),
}
OSU_TITLES = {
    "Latency": "osu_latency",
    "Bandwidth": "osu_bw",
    "Bi-Directional Bandwidth": "osu_bibw",
    "Allreduce Latency": "osu_allreduce",
    "Allgather Latency": "osu_allgather",
    "Reduce_scatter Latency": "osu_reduce_scatter",
    "Broadcast Latency": "osu_bcast",
    "All-to-All Personalized Exchange Latency": "osu_alltoall",
}
IMB_BENCHMARKS = ("PingPong", "Sendrecv", "Allreduce", "Allgather", "Reduce_scatter", "Bcast", "Alltoall")
MPI_TYPES = {
    "MPI_BYTE": "uint8",
    "MPI_CHAR": "int8",
    "MPI_SIGNED_CHAR": "int8",
    "MPI_UNSIGNED_CHAR": "uint8",
    "MPI_INT": "int32",
    "MPI_UNSIGNED": "uint32",
    "MPI_LONG": "int64",
    "MPI_LONG_LONG": "int64",
    "MPI_FLOAT": "float",
    "MPI_DOUBLE": "double",
}
# OSU before 7.0 prints no datatype: its reductions sum floats, the rest move chars (osu_allreduce.c: float *sendbuf)
OSU_REDUCTION_TYPE, OSU_MOVE_TYPE = "float", "int8"

PREFIXES = (re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:"), re.compile(r"^\d+:\s"), re.compile(r"^\[\d+\]\s?"))
OSU_TITLE = re.compile(r"#\s*OSU\s+([A-Z]+)(-[A-Za-z]+)?\s+(.+?)\s+Test(?:\s+v(\S+))?\s*$")
OSU_DATATYPE = re.compile(r"#\s*Datatype:\s*(MPI_\w+)")
IMB_VERSION = re.compile(r"Intel\s*\(R\)\s*MPI Benchmarks\s+(.+?),\s*(MPI-1|MPI-2|NBC|RMA|EXT|IO|MT|\S+) part")
IMB_RELEASE = re.compile(r"(\d+)(?:\.(\d+))?(?:\s+Update\s+(\d+))?")
RANKS_IN_NAME = re.compile(r"(?:^|[^A-Za-z0-9])(?:n|np|ranks|nranks)[-_=]?(\d+)(?=[^0-9]|$)")
NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


def looks_like_osu(text: str) -> bool:
    """Return True when `text` carries an OSU micro-benchmark title line ('# OSU MPI Latency Test v7.4')."""
    return any(OSU_TITLE.search(_clean(line)) for line in text[:20000].splitlines())


def looks_like_imb(text: str) -> bool:
    """Return True when `text` is Intel MPI Benchmarks output (its banner, or its '# Benchmarking' blocks)."""
    head = text[:20000]
    return bool(IMB_VERSION.search(head)) or ("# Benchmarking " in head and "#processes = " in head)


def _clean(line: str) -> str:
    """Return a line without launcher prefixes (Open MPI --tag-output, srun --label, [rank])."""
    line = line.rstrip("\r\n")
    for prefix in PREFIXES:
        line = prefix.sub("", line)
    return line


def _reduces(op: str) -> bool:
    """Return whether ncbench op `op` takes a reduction (ops.Op.reduction; p2p tests do not)."""
    return op in ops.OPS and ops.OPS[op].reduction


def _rooted(op: str) -> bool:
    """Return whether ncbench op `op` takes a root (ops.Op.rooted; p2p tests do not)."""
    return op in ops.OPS and ops.OPS[op].rooted


def _fail(source: str, why: str) -> NcbenchError:
    return NcbenchError(f"{source or 'input'}: {why}", EXIT_DATAERR)


def _blank() -> dict:
    """Return a row with every results column, filled with what neither tool reports."""
    row = dict.fromkeys((name for name in RESULT_COLUMNS if name != "run_id"), None)
    row.update(
        backend="mpi",
        dtype="uint8",
        redop="none",
        root=-1,
        in_place=False,
        nranks=-1,
        nnodes=-1,
        ranks_per_node=-1,
        warmup=-1,
        iters=-1,
        samples=1,
        wrong=-1,
        wrong_sources="",
        slowest_rank=-1,
        slowest_host="",
        peer_a=-1,
        peer_b=-1,
        time="",
    )
    return row


def _fill(row: dict, sizing: Sizing, printed_bytes: int, nranks: int, dtype: str, time_us: float) -> dict:
    """Set op, sizes, count and bandwidths of `row` from the tool's printed size and time (us)."""
    nbytes = printed_bytes * nranks if sizing.per_rank_block else printed_bytes
    elt = ops.dtype(dtype).size
    if sizing.op in ("allgather", "alltoall", "reducescatter"):
        count = nbytes // elt // nranks if nranks > 0 else -1  # elements per rank-block (NCCL's count)
    else:
        count = nbytes // elt
    row.update(op=sizing.op, nbytes=nbytes, count=count, dtype=dtype, nranks=nranks, time_us=time_us)
    if _reduces(sizing.op):
        row["redop"] = "sum"
    if _rooted(sizing.op):
        row["root"] = 0  # osu_bcast.c and IMB_bcast.c: root 0 (IMB -root_shift: see _imb_row)
    if sizing.op in TESTS:
        moved = nbytes * (2 if sizing.op == "bibw" else 1)  # as ncbench p2p: bibw moves a message each way
        row.update(peer_a=0, peer_b=1, algbw_GBps=ops.algbw_GBps(moved, time_us))
        row["busbw_GBps"] = row["algbw_GBps"]
    else:
        row["algbw_GBps"] = ops.algbw_GBps(nbytes, time_us)
        known = nranks > 0
        row["busbw_GBps"] = ops.busbw_GBps(ops.op(sizing.op), nbytes, time_us, nranks) if known else float("nan")
    return row


# --- OSU --------------------------------------------------------------------------------------------------


@dataclass
class _OsuTable:
    """What the last '# Size ...' header and '# Datatype:' line said."""

    columns: tuple = ()
    dtype: str | None = None


OSU_COLUMNS = (
    ("avg latency", "avg"),
    ("latency", "avg"),
    ("min latency", "min"),
    ("max latency", "max"),
    ("iterations", "iters"),
    ("p50 tail lat", "p50"),
    ("p99 tail lat", "p99"),
    ("bandwidth", "MBps"),
    ("validation", "valid"),
)


def _osu_columns(header: str) -> tuple:
    """Return the column kinds of an OSU '# Size  Avg Latency(us)  ...' header (after the size)."""
    labels = re.split(r"\s{2,}", header.lstrip("#").strip())[1:]
    kinds = []
    for label in labels:
        name = re.sub(r"\s*\(.*?\)\s*$", "", label).strip().lower()
        kinds.append(next((kind for text, kind in OSU_COLUMNS if name == text), f"?{name}"))
    return tuple(kinds)


def _osu_title(lines: list[str], source: str) -> tuple[str, str, str]:
    """Return (benchmark, version, backend) from the OSU title line(s); several different benchmarks are refused."""
    found = {m.groups() for m in map(OSU_TITLE.search, lines) if m}
    if not found:
        raise _fail(source, "no '# OSU MPI ... Test' title line; is this the output of an OSU micro-benchmark?")
    names = {name for _, _, name, _ in found}
    if len(names) > 1:
        raise _fail(source, f"holds several OSU benchmarks ({', '.join(sorted(names))}); import one per file")
    family, accel, name, version = min(found, key=str)
    if name not in OSU_TITLES:
        raise _fail(
            source, f"OSU {name} Test is not a benchmark ncbench imports; it imports {', '.join(OSU_TITLES.values())}"
        )
    kind = f"{family}{accel or ''}".upper()
    backend = {"MPI": "mpi", "MPI-CUDA": "cuda-mpi"}.get(kind, "nccl" if family == "NCCL" else kind.lower())
    return OSU_TITLES[name], version or "?", backend


def osu_ranks(source: str, benchmark: str) -> int:
    """Return the rank count a file name states (osu_allgather_n4.log, bcast-np8.txt), 2 for OSU's pt2pt, or -1."""
    if SIZES[benchmark].op in TESTS:
        return 2  # OSU's pt2pt tests refuse anything but exactly two processes
    match = RANKS_IN_NAME.search(source.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else -1


def parse_osu(text: str, source: str = "", nranks: int | None = None) -> Imported:
    """Return the records of one OSU benchmark's output; raise NcbenchError (65) if it holds none.

    OSU does not print how many ranks ran: `nranks`, else the file name (..._n4...), says; osu_allgather and
    osu_alltoall cannot be mapped to ncbench sizes without it.
    """
    lines = [_clean(line) for line in text.split("\n")]
    benchmark, version, backend = _osu_title(lines, source)
    sizing = SIZES[benchmark]
    ranks = nranks if nranks is not None else osu_ranks(source, benchmark)
    if ranks < 1 and sizing.per_rank_block:
        raise _fail(
            source,
            f"{benchmark} prints each rank's block, so its sizes need the rank count, which OSU does "
            "not print; name the file ..._n<ranks>... or pass the rank count",
        )
    out = Imported(
        meta={
            "source": source,
            "format": "osu",
            "tool": "OSU",
            "osu_version": version,
            "benchmark": benchmark,
            "op": sizing.op,
            "backend": backend,
            "nranks": ranks,
            "hosts": [],
            "nnodes": -1,
            "ranks_per_node": -1,
        }
    )
    if ranks < 1:
        out.problems.append(
            f"{benchmark}: the rank count is unknown (OSU does not print it); nranks and busbw are "
            "left unknown (name the file ..._n<ranks>...)"
        )
    kinds = _osu_rows(lines, text.endswith("\n"), sizing, ranks, out)
    if not out.rows:
        raise _fail(source, f"no {benchmark} result rows under a '# Size' header; is the output cut short?")
    for row in out.rows:
        row["backend"] = backend
    _osu_statistic(out, benchmark, kinds)
    return out


def _osu_rows(lines: list[str], complete: bool, sizing: Sizing, ranks: int, out: Imported) -> set:
    """Append a row per OSU data line to out.rows; return every column kind the headers named."""
    table, kinds = _OsuTable(), set()
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if match := OSU_DATATYPE.search(stripped):
            table.dtype = MPI_TYPES.get(match.group(1))
            if table.dtype is None:
                raise _fail(out.meta["source"], f"line {number}: OSU datatype {match.group(1)} is unknown to ncbench")
        elif re.match(r"#\s*Size\s", stripped):
            table.columns = _osu_columns(stripped)
            kinds.update(table.columns)
        elif stripped[:1].isdigit():
            cut = number == len(lines) and not complete  # the output ends inside this line
            parsed = _osu_row(stripped.split(), table, sizing, ranks, truncated=cut)
            if isinstance(parsed, str):
                out.problems.append(f"line {number}: {parsed}: {stripped[:60]!r}")
            else:
                out.rows.append(parsed)
    return kinds


def _osu_row(tokens: list[str], table: _OsuTable, sizing: Sizing, ranks: int, truncated: bool):
    """Return the row for one OSU data line, or the reason it was skipped."""
    if not table.columns:
        return "a result row before any '# Size' header"
    values = dict(zip(table.columns, tokens[1:], strict=False))
    numeric = [v for k, v in values.items() if k != "valid"]
    if len(tokens) != len(table.columns) + 1 or not tokens[0].isdigit() or not all(map(NUMBER.match, numeric)):
        return "truncated or garbled row"
    if truncated:
        return "truncated row (the output ends inside it)"
    default_type = OSU_REDUCTION_TYPE if _reduces(sizing.op) else OSU_MOVE_TYPE
    dtype = "uint8" if sizing.op in TESTS else table.dtype or default_type
    size = int(tokens[0])
    if "MBps" in values:  # osu_bw, osu_bibw: rank 0's MB/s (1e6 B/s) over windows of messages
        bandwidth_MBps = float(values["MBps"])
        moved = size * (2 if sizing.op == "bibw" else 1)
        time_us = moved / bandwidth_MBps if bandwidth_MBps > 0 else float("nan")
    elif "avg" in values:
        time_us = float(values["avg"])
    else:
        return "a row with neither a latency nor a bandwidth column"
    row = _fill(_blank(), sizing, size, ranks, dtype, time_us)
    for kind, column in (
        ("min", "time_us_min"),
        ("max", "time_us_max"),
        ("p50", "time_us_p50"),
        ("p99", "time_us_p99"),
    ):
        if kind in values:
            row[column] = float(values[kind])
    if "iters" in values:
        row["iters"] = int(float(values["iters"]))
    if "valid" in values:
        row["wrong"] = 0 if values["valid"].lower() == "pass" else 1  # OSU says Fail, not how many were wrong
    return row


def _osu_statistic(out: Imported, benchmark: str, kinds: set) -> None:
    """Name what OSU's numbers are in meta["statistic"] and every row's timing."""
    op = SIZES[benchmark].op
    if op == "latency":
        text = f"OSU {benchmark}: half the round trip, mean over iterations, on rank 0's clock (us)"
    elif op in ("bw", "bibw"):
        each = "each way, time_us = 2 x size / bandwidth" if op == "bibw" else "one way, time_us = size / bandwidth"
        text = f"OSU {benchmark}: rank 0's MB/s over windows of messages {each} per message"
    else:
        text = f"OSU {benchmark}: mean over iterations per rank, averaged over the ranks (us)"
        if "min" in kinds:
            text += "; time_us_min/max: the fastest and slowest rank's mean (-f)"
        if "p50" in kinds:
            text += "; time_us_p50/p99: percentiles over iterations of the ranks' average (-z)"
    out.meta.update(
        statistic=text,
        size_mapping=_mapping_text(benchmark),
        full="min" in kinds,
        tail="p50" in kinds,
        validated="valid" in kinds,
        dtypes=sorted({row["dtype"] for row in out.rows}),
        iters=sorted({row["iters"] for row in out.rows}),
    )
    for row in out.rows:
        row["timing"] = text
    if any(row["wrong"] > 0 for row in out.rows):
        out.problems.append(f"{benchmark}: OSU validation says Fail (it does not count wrong elements; wrong = 1)")


def _mapping_text(benchmark: str) -> str:
    sizing = SIZES[benchmark]
    scale = "nranks x the printed size" if sizing.per_rank_block else "the printed size"
    name = benchmark.split("<")[0]
    return f"{name} prints the {sizing.printed}; ncbench nbytes = {scale} ({sizing.source})"


# --- IMB --------------------------------------------------------------------------------------------------


@dataclass
class _ImbRun:
    """What IMB's banner says for every block: version, how it was called, datatypes."""

    version: str = "?"
    release: tuple = (9999, 0)  # (year or major, update): an unknown version reads as the newest
    calling: str = ""
    dtype: str = "uint8"  # MPI_Datatype (default MPI_BYTE)
    reduction_dtype: str = "float"  # MPI_Datatype for reductions (default MPI_FLOAT)
    redop: str = "sum"


IMB_COLUMNS = {
    "#bytes": "bytes",
    "#repetitions": "reps",
    "t[usec]": "t",
    "t_min[usec]": "min",
    "t_max[usec]": "max",
    "t_avg[usec]": "avg",
    "Mbytes/sec": "MBps",
    "defects": "defects",
}


def _imb_run(lines: list[str], source: str) -> _ImbRun:
    """Return the banner's facts; an unknown datatype is refused."""
    run = _ImbRun()
    for number, line in enumerate(lines):
        if match := IMB_VERSION.search(line):
            run.version = match.group(1).strip()
            if release := IMB_RELEASE.match(run.version):
                major, minor, update = release.groups()
                run.release = (int(major), int(update or minor or 0))
        elif "Calling sequence was" in line:
            calling = []
            for follow in lines[number + 1 :]:
                if calling and not follow.strip("# "):
                    break
                calling.append(follow.strip("# ").strip())
            run.calling = " ".join(part for part in calling if part)
        elif match := re.match(r"#\s*MPI_Datatype( for reductions)?\s*:\s*(\S+)", line.strip()):
            dtype = MPI_TYPES.get(match.group(2))
            if dtype is None:
                raise _fail(source, f"IMB datatype {match.group(2)} is not one ncbench knows")
            setattr(run, "reduction_dtype" if match.group(1) else "dtype", dtype)
        elif match := re.match(r"#\s*MPI_Op\s*:\s*MPI_(\w+)", line.strip()):
            run.redop = match.group(1).lower()
    return run


def _imb_blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """Return (benchmark, first line, end line) of every '# Benchmarking NAME' block, in file order."""
    starts = [(n, m.group(1)) for n, line in enumerate(lines) if (m := re.match(r"#\s*Benchmarking\s+(\S+)", line))]
    ends = [n for n, _ in starts[1:]] + [len(lines)]
    return [(name, start, end) for (start, name), end in zip(starts, ends, strict=True)]


def parse_imb(text: str, source: str = "") -> list[Imported]:
    """Return one Imported per benchmark x #processes block of IMB-MPI1 output; raise NcbenchError (65) if none."""
    lines = [_clean(line) for line in text.split("\n")]
    if not looks_like_imb(text):
        raise _fail(source, "no Intel MPI Benchmarks banner or '# Benchmarking' block; is this IMB-MPI1 output?")
    run = _imb_run(lines, source)
    found, skipped = [], []
    for benchmark, start, end in _imb_blocks(lines):
        if benchmark not in IMB_BENCHMARKS:
            skipped.append(benchmark)
            continue
        block = _imb_block(lines, start, end, benchmark, run, source, complete=text.endswith("\n"))
        if block.rows:
            found.append(block)
        else:
            skipped.append(f"{benchmark} ({'; '.join(block.problems) or 'no result rows'})")
    if not found:
        raise _fail(
            source,
            "no IMB-MPI1 result rows of a benchmark ncbench imports "
            f"({', '.join(IMB_BENCHMARKS)}); is the output cut short?",
        )
    if run.version == "?":
        found[0].problems.append("no IMB version banner: Reduce_scatter #bytes read as IMB 2019 Update 2+ (per rank)")
    if skipped:
        found[0].problems.append(f"blocks left out (not imported by ncbench, or empty): {', '.join(skipped)}")
    return found


def _imb_block(lines, start: int, end: int, benchmark: str, run: _ImbRun, source: str, complete: bool) -> Imported:
    """Return the records of one '# Benchmarking' block (lines[start:end])."""
    old_split = benchmark == "Reduce_scatter" and run.release < (2019, 2)
    key = "Reduce_scatter<2019u2" if old_split else benchmark
    out = Imported(
        meta={
            "source": source,
            "format": "imb",
            "tool": "IMB",
            "imb_version": run.version,
            "benchmark": benchmark,
            "op": SIZES[key].op,
            "backend": "mpi",
            "nranks": -1,
            "hosts": [],
            "nnodes": -1,
            "ranks_per_node": -1,
            "idle_ranks": 0,
            "calling_sequence": run.calling,
            "first_line": start + 1,
            "size_mapping": _mapping_text(key),
        }
    )
    columns: tuple = ()
    for number in range(start, end):
        stripped = lines[number].strip()
        if match := re.match(r"#\s*#processes\s*=\s*(\d+)", stripped):
            out.meta["nranks"] = int(match.group(1))
        elif match := re.search(r"\(\s*(\d+) additional process", stripped):
            out.meta["idle_ranks"] = int(match.group(1))
        elif re.search(r"groups of \d+ process", stripped):
            out.problems.append("IMB -multi mode (several groups at once) is not imported")
            return out
        elif stripped.startswith("#bytes"):
            columns = tuple(IMB_COLUMNS.get(token, f"?{token}") for token in stripped.split())
        elif stripped[:1].isdigit():
            cut = number == len(lines) - 1 and not complete  # the output ends inside this line
            parsed = _imb_row(stripped.split(), columns, SIZES[key], out.meta["nranks"], run, cut)
            if isinstance(parsed, str):
                out.problems.append(f"line {number + 1}: {parsed}: {stripped[:60]!r}")
            else:
                out.rows.append(parsed)
    _imb_statistic(out, benchmark, run)
    return out


def _imb_row(tokens: list[str], columns: tuple, sizing: Sizing, nranks: int, run: _ImbRun, truncated: bool):
    """Return the row for one IMB data line, or the reason it was skipped."""
    if "bytes" not in columns or nranks < 1:
        return "a result row before the '#processes' line and '#bytes' header"
    if "avg" not in columns and "t" not in columns:
        return "a row with neither a t_avg[usec] nor a t[usec] column"
    if len(tokens) > 1 and not NUMBER.match(tokens[1]):
        return f"IMB could not measure this size ({' '.join(tokens[1:])[:40]})"
    values = dict(zip(columns, tokens, strict=False))
    if len(tokens) != len(columns) or not all(map(NUMBER.match, tokens)) or truncated:
        return "truncated or garbled row"
    time_us = float(values.get("avg", values.get("t")))
    p2p = sizing.op in TESTS
    dtype = "uint8" if p2p else run.reduction_dtype if _reduces(sizing.op) else run.dtype
    row = _fill(_blank(), sizing, int(values["bytes"]), 2 if p2p else nranks, dtype, time_us)
    row.update(
        iters=int(values.get("reps", -1)), time_us_min=_float(values.get("min")), time_us_max=_float(values.get("max"))
    )
    if _reduces(sizing.op):
        row["redop"] = run.redop
    if _rooted(sizing.op) and re.search(r"-root_shift\s+(?:on|1)\b", run.calling):
        row["root"] = -1  # -root_shift on: the root moves every repetition
    if "defects" in values:
        row["wrong"] = 0 if float(values["defects"]) == 0 else 1  # IMB -check prints a deviation, not a count
    return row


def _float(token: str | None) -> float | None:
    return None if token is None else float(token)


def _imb_statistic(out: Imported, benchmark: str, run: _ImbRun) -> None:
    """Name what IMB's numbers are in meta["statistic"] and every row's timing."""
    if benchmark == "PingPong":
        text = "IMB PingPong t[usec]: half the round trip, mean over repetitions, the slower of the 2 ranks (us)"
    else:
        text = (
            f"IMB {benchmark} t_avg: mean over repetitions per rank, averaged over the ranks (us); "
            "time_us_min/max: t_min/t_max, the fastest and slowest rank's mean"
        )
    out.meta.update(statistic=text, iters=sorted({row["iters"] for row in out.rows}))
    if benchmark == "PingPong":
        out.meta["nranks"] = 2
    for row in out.rows:
        row["timing"] = text
