"""The nccl-tests table on stdout (v2.17.3+ layout), so operators' eyes and scripts carry over.

result rows (dicts with RESULT_COLUMNS keys) -> fixed-width lines, header and footer.
Widths and number rules are nccl-tests' src/util.cu (its getFloatStr and the row format strings).
"""

import math

BANNER = "#" + " " * 62 + "out-of-place" + " " * 23 + "in-place" + " " * 10
NAMES = ("size", "count", "type", "redop", "root")
UNITS = ("(B)", "(elements)", "", "", "")
PLACEMENT_NAMES = ("time", "algbw", "busbw", "#wrong")
PLACEMENT_UNITS = ("(us)", "(GB/s)", "(GB/s)", "")


def float_str(value: float, width: int) -> str:
    """Return `value` in at most `width` characters: %.2f, then %.1f, %.0f, then e-notation (getFloatStr)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'nan':>{width}}"
    for decimals in (2, 1, 0):
        text = f"{value:{width}.{decimals}f}"
        if len(text) <= width:
            return text
    return f"{value:{width}.{1 if width >= 7 else 0}e}"


def _prefix(fields) -> str:
    size, count, kind, redop, root = fields
    return f"#{size:>11}  {count:>12}  {kind:>8}  {redop:>6}  {root:>6}"


def _placement(fields) -> str:
    time, algbw, busbw, wrong = fields
    return f"  {time:>7}  {algbw:>6}  {busbw:>6}  {wrong:>6}"


def header() -> list[str]:
    """Return the three header lines of the results table."""
    names = _prefix(NAMES) + _placement(PLACEMENT_NAMES) * 2 + " "
    units = _prefix(UNITS) + _placement(PLACEMENT_UNITS) * 2 + " "
    return [BANNER, names, units]


def _wrong_str(wrong: int) -> str:
    return "   N/A" if wrong is None or wrong < 0 else f"{wrong:6g}"


def row_line(out_of_place: dict, in_place: dict | None) -> str:
    """Return one table line for a size: its out-of-place and in-place measurements."""
    first = out_of_place
    redop = first["redop"] if first["redop"] else "none"
    line = f"{first['nbytes']:12d}  {first['count']:12d}  {first['dtype']:>8}  {redop:>6}  {first['root']:6d}"
    for placement in (out_of_place, in_place):
        if placement is None:
            line += f"  {'':>7}  {'':>6}  {'':>6}  {'':>6}"
            continue
        line += (
            f"  {float_str(placement['time_us'], 7)}  {float_str(placement['algbw_GBps'], 6)}"
            f"  {float_str(placement['busbw_GBps'], 6)}  {_wrong_str(placement['wrong'])}"
        )
    return line


def footer(rows: list[dict], name: str) -> list[str]:
    """Return nccl-tests' footer: out-of-bounds count, average busbw over every row, conclusion."""
    checked = [r for r in rows if r["wrong"] is not None and r["wrong"] >= 0]
    failed = sum(1 for r in checked if r["wrong"] > 0)
    bw = [r["busbw_GBps"] for r in rows]
    avg = sum(bw) / len(bw) if bw else 0.0
    return [
        f"# Out of bounds values : {failed} {'FAILED' if failed else 'OK'}",
        f"# Avg bus bandwidth    : {avg:g} ",
        "#",
        f"# Collective test concluded: {name}",
    ]


class Stdout:
    """What rank 0 prints while measuring: the table (default), CSV rows or JSON lines, flushed per line."""

    def __init__(self, fmt: str, columns: list[str]):
        self.fmt = fmt
        self.columns = columns
        self.pending = None
        self.rows: list[dict] = []
        self.csv_header_done = False

    def say(self, line: str) -> None:
        """Print a '#' comment line in table mode (other formats keep stdout machine-readable)."""
        if self.fmt == "table":
            print(line, flush=True)

    def begin(self, preamble: list[str], *, collective: bool = True) -> None:
        self.rows = []
        for line in preamble:
            self.say(line)
        if self.fmt == "table" and collective:
            print("\n".join(header()), flush=True)

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if self.fmt == "csv":
            self._csv(row)
        elif self.fmt == "json":
            from ..records import json_text

            print(json_text({k: row.get(k) for k in self.columns}), flush=True)
        elif not row["in_place"]:
            self.pending = row
        else:
            print(row_line(self.pending or row, row), flush=True)
            self.pending = None

    def end(self, name: str, notes: list[str]) -> None:
        if self.pending is not None and self.fmt == "table":
            print(row_line(self.pending, None), flush=True)
            self.pending = None
        for line in footer(self.rows, name) + notes:
            self.say(line)

    def _csv(self, row: dict) -> None:
        import csv
        import sys

        out = csv.DictWriter(sys.stdout, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        if not self.csv_header_done:
            out.writeheader()
            self.csv_header_done = True
        out.writerow(row)
        sys.stdout.flush()


P2P_HEADER = (
    f"#{'rank_a':>7}  {'rank_b':>6}  {'host_a':>12}  {'host_b':>12}  {'size':>10}  "
    f"{'latency':>9}  {'bw':>8}  {'bibw':>8}  {'#wrong':>6}\n"
    f"#{'':>7}  {'':>6}  {'':>12}  {'':>12}  {'(B)':>10}  {'(us)':>9}  {'(GB/s)':>8}  {'(GB/s)':>8}  {'':>6}"
)


def p2p_lines(rows: list[dict], hosts: list[str]) -> list[str]:
    """Return one OSU-style line per (pair, size): latency, uni- and bidirectional bandwidth."""
    grouped: dict[tuple[int, int, int], dict[str, dict]] = {}
    for r in rows:
        grouped.setdefault((r["peer_a"], r["peer_b"], r["nbytes"]), {})[r["op"]] = r
    lines = []
    for (a, b, nbytes), tests in grouped.items():
        lat = tests.get("latency")
        cells = [float_str(lat["time_us"], 9) if lat else f"{'-':>9}"]
        cells += [float_str(tests[t]["algbw_GBps"], 8) if t in tests else f"{'-':>8}" for t in ("bw", "bibw")]
        wrong = next(iter(tests.values()))["wrong"]
        lines.append(
            f"{a:8d}  {b:6d}  {hosts[a]:>12}  {hosts[b]:>12}  {nbytes:10d}  {'  '.join(cells)}  {_wrong_str(wrong)}"
        )
    return lines
