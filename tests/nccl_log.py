"""Write nccl-tests text logs from known rows, the way nccl-tests prints them (tests of the importer).

The formulas and print formats are nccl-tests' own, per era: count and size per op (per-rank counts
rounded down to 16-byte multiples), algbw = size / time, busbw = algbw * factor(n), and the number
formats of v1 (ms, %7.3f, %5.2f), v2.0-2.17.2 (time %7.0f/%7.1f/%7.2f by magnitude, bandwidth %6.2f)
and v2.17.3+ (getFloatStr: the most decimals that fit 7 or 6 characters, then e-notation).
"""

import random

TYPE_BYTES = {"int8": 1, "half": 2, "bfloat16": 2, "float": 4, "int32": 4, "double": 8, "int64": 8}
# op -> (busbw factor, count per rank?, redop printed from 2.13.4, rooted?, in-place #wrong N/A from 2.13.1?)
OPS = {
    "allreduce": (lambda n: 2 * (n - 1) / n, False, "sum", False, False),
    "allgather": (lambda n: (n - 1) / n, True, "none", False, False),
    "reducescatter": (lambda n: (n - 1) / n, True, "sum", False, False),
    "alltoall": (lambda n: (n - 1) / n, True, "none", False, True),
    "broadcast": (lambda n: 1.0, False, "none", True, False),
    "reduce": (lambda n: 1.0, False, "sum", True, False),
    "sendrecv": (lambda n: 1.0, False, "sum", False, True),
}
BINARY = {
    "allreduce": "all_reduce_perf",
    "allgather": "all_gather_perf",
    "reducescatter": "reduce_scatter_perf",
    "alltoall": "alltoall_perf",
    "broadcast": "broadcast_perf",
    "reduce": "reduce_perf",
    "sendrecv": "sendrecv_perf",
}
REDOP_COLUMN_V2 = {"allreduce", "reducescatter", "reduce", "alltoall"}  # v2.0-2.11 headers
ERAS = ("2.19", "2.15", "2.8", "1")  # getFloatStr | %7.xf + #wrong | %7.xf + error | v1 milliseconds


def float_str(value: float, width: int) -> str:
    """nccl-tests' getFloatStr: %.2f if it fits the width, else %.1f, %.0f, then %.1e (7) / %.0e (6)."""
    for decimals in (2, 1, 0):
        text = f"{value:{width}.{decimals}f}"
        if len(text) <= width:
            return text
    return f"{value:{width}.1e}" if width >= 7 else f"{value:{width}.0e}"


def time_str(time_us: float) -> str:
    """v2.0-2.17.2: %7.0f from 10000 us, %7.1f from 100 us, else %7.2f."""
    return f"{time_us:7.0f}" if time_us >= 10000 else f"{time_us:7.1f}" if time_us >= 100 else f"{time_us:7.2f}"


def sizes_and_counts(op: str, nranks: int, requested: int, dtype: str) -> tuple[int, int]:
    """Return (printed size, printed count) for a requested size: nccl-tests' getCollByteCount."""
    width = TYPE_BYTES[dtype]
    count = requested // width
    if not OPS[op][1]:
        return count * width, count
    base = (count // nranks) & ~(max(16 // width, 1) - 1)
    return base * nranks * width, base


def placement(
    era: str, op: str, nranks: int, nbytes: int, time_us: float, *, before_2020=False, checked=True, in_place=False
) -> str:
    """Return one placement's columns (time, algbw, busbw, #wrong) as the era prints them."""
    algbw = nbytes / 1e3 / time_us
    busbw = algbw * OPS[op][0](nranks)
    if before_2020 and op in ("allgather", "reducescatter"):
        algbw = busbw = nbytes * (nranks - 1) / nranks / 1e3 / time_us  # nccl-tests before June 2020
    if era == "1":
        wrong = f"{0.0:7.0e}" if checked else "\tN/A"
        return f"  {time_us / 1e3:7.3f}  {algbw:5.2f}  {busbw:5.2f}  {wrong}"
    unchecked = not checked or (era in ("2.19", "2.15") and in_place and OPS[op][4])
    if era == "2.19":
        wrong = "   N/A" if unchecked else f"{0:6g}"
        return f"  {float_str(time_us, 7)}  {float_str(algbw, 6)}  {float_str(busbw, 6)}  {wrong}"
    wrong = "  N/A" if unchecked else (f"{0:5g}" if era == "2.15" else f"{0.0:5.0e}")
    return f"  {time_str(time_us)}  {algbw:6.2f}  {busbw:6.2f}  {wrong}"


def row_head(era: str, op: str, nbytes: int, count: int, dtype: str, root: int) -> str:
    """Return size, count, type, redop and root as the era prints them (v2.0-2.11: columns per op)."""
    _, _, redop, rooted, _ = OPS[op]
    head = f"{nbytes:12d}  {count:12d}  {dtype:>8s}"
    if era in ("2.19", "2.15"):
        return head + f"  {redop:>6s}  {root if rooted else -1:6d}"
    if era == "2.8":
        shown_redop = redop if op in REDOP_COLUMN_V2 and redop != "none" else ""
        if op in REDOP_COLUMN_V2:
            head += f"  {shown_redop:>6s}"
        return head + (f"  {root:6d}" if rooted else "")
    return (
        head
        + (f"  {redop:>6s}" if op in ("allreduce", "reducescatter", "reduce") else "")
        + (f"  {root:6d}" if rooted else "")
    )


def header(era: str, op: str) -> list[str]:
    """Return the column-name line the era prints (v2.0-2.11 and v1: the columns depend on the op)."""
    if era in ("2.19", "2.15"):
        side = "     time   algbw   busbw" + ("  #wrong" if era == "2.19" else " #wrong")
        return [f"#       size         count      type   redop    root{side}{side} "]
    reduction = op in ("allreduce", "reducescatter", "reduce")
    if era == "2.8":
        names = ["size", "count", "type"] + ["redop"] * (op in REDOP_COLUMN_V2) + ["root"] * OPS[op][3]
        return ["# " + "  ".join(names) + "     time   algbw   busbw  error     time   algbw   busbw  error"]
    names = ["bytes", "N", "type"] + ["op"] * reduction + ["root"] * OPS[op][3]
    return ["#      " + "  ".join(names) + "     time  algbw  busbw      res     time  algbw  busbw      res"]


def times(rng: random.Random, sizes: list[int], peak_GBps: float, latency_us: float) -> list[float]:
    """Return a plausible time per size: latency plus size at the peak rate, with a few percent of noise."""
    return [(latency_us + nbytes / 1e3 / peak_GBps) * (1 + rng.uniform(0, 0.05)) for nbytes in sizes]


def write_log(
    op: str,
    nranks: int,
    *,
    era: str = "2.19",
    rng: random.Random | None = None,
    named: bool = True,
    devices: int = 0,
    per_node: int = 8,
    max_bytes: int = 8 << 30,
    min_bytes: int = 8,
    dtype: str = "float",
    peak_GBps: float = 100.0,
    latency_us: float = 20.0,
    before_2020: bool = False,
    checked: bool = True,
    preamble: bool = True,
    hosts: str = "node",
) -> str:
    """Return the text of one nccl-tests run: preamble, device lines (if any), header, a row per size."""
    rng = rng or random.Random(0)
    lines = []
    if named and era in ("2.19", "2.15"):
        lines.append(f"# Collective test starting: {BINARY[op]}")
    if preamble:
        later = " agg iters: 1" if era in ("2.19", "2.15") else ""
        lines.append(
            f"{'' if era == '1' else '# '}nThread 1 nGpus 1 minBytes {min_bytes} maxBytes {max_bytes} step: "
            f"2(factor) warmup iters: 5 iters: 20{later} validation: {int(checked)}"
        )
        lines += ["#", "# Using devices"] if devices else []
    for rank in range(devices):
        host = f"{hosts}{rank // per_node + 1}"
        lines.append(
            f"#  Rank {rank:2d} Group  0 Pid {1000 + rank:6d} on {host:>10s} device {rank % per_node:2d} "
            f"[0000:{rank % per_node:02x}:00] NVIDIA H100 80GB HBM3"
        )
    lines += ["#", *header(era, op)]
    requested = []
    size = min_bytes
    while size <= max_bytes:
        requested.append(size)
        size *= 2
    printed = [sizes_and_counts(op, nranks, r, dtype) for r in requested]
    for (nbytes, count), time_us in zip(printed, times(rng, [p[0] for p in printed], peak_GBps, latency_us)):
        if nbytes == 0:
            time_us = latency_us / 4
        cells = "".join(
            placement(
                era,
                op,
                nranks,
                nbytes,
                time_us * (1 + 0.01 * in_place),
                before_2020=before_2020,
                checked=checked,
                in_place=bool(in_place),
            )
            for in_place in (0, 1)
        )
        lines.append(row_head(era, op, nbytes, count, dtype, 0) + cells)
    lines += ["# Out of bounds values : 0 OK", "# Avg bus bandwidth    : 1.0 ", "#"]
    return "\n".join(lines) + "\n"
