"""A node's or the fleet's trend over nights, from the verdicts kept under results/health/.

results/health/<run_id>/verdict.json (any number) -> one row per night: state, counts, class peer references,
and for one node its state, reason and ratio -> a table or JSON lines.
"""

from pathlib import Path

from ..errors import EXIT_DATAERR, EXIT_NOINPUT, EXIT_USAGE, NcbenchError
from ..records import json_lines, read_json
from .outputs import SCHEMA

TREND_CLASS = "pairs.intra_leaf"  # the fleet column: pair busbw peer reference, the night's most comparable number


def load(folder: Path) -> list[dict]:
    """Return every verdict under `folder`, oldest first; one sentence for a missing folder or a damaged file."""
    if not folder.is_dir():
        raise NcbenchError(
            f"{folder}: no such directory of health runs (ncbench health writes results/health/)", EXIT_NOINPUT
        )
    paths = sorted(folder.glob("*/verdict.json")) or sorted(folder.glob("verdict.json"))
    if not paths:
        raise NcbenchError(f"{folder}: no health runs in it (no */verdict.json)", EXIT_NOINPUT)
    nights = []
    for path in paths:
        v = read_json(path, "damaged verdict; move it aside to read the rest")
        if not isinstance(v, dict) or v.get("schema") != SCHEMA or "status" not in v or "started" not in v:
            raise NcbenchError(f"{path}: not an ncbench health verdict (schema {SCHEMA}); move it aside", EXIT_DATAERR)
        if "nodes" not in v:  # verdicts before the node list: the JUnit file beside them names every node
            v["nodes"] = _junit_nodes(path.parent / "junit.xml")
        nights.append(v)
    return sorted(nights, key=lambda v: v["started"])


def _junit_nodes(path: Path) -> list[str]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    return [c.get("name") for c in root.iter("testcase") if c.get("classname") == "ncbench.health.nodes"]


def seen(v: dict) -> set[str]:
    """Return the node names one night knew: all it tested (newer verdicts), else the ones it named."""
    names = set(v.get("nodes", [])) | set(v.get("node_status", {}))
    return (
        names
        | {e["node"] for e in v.get("entities", []) if "node" in e}
        | {n for e in v.get("entities", []) for n in e.get("ends", [])}
    )


def check_node(nights: list[dict], node: str) -> None:
    """Raise one sentence (exit 64) when no night saw `node`, naming the nearest names that were seen."""
    import difflib

    known = set().union(*(seen(v) for v in nights))
    if node in known:
        return
    near = difflib.get_close_matches(node, sorted(known), n=3, cutoff=0.5)
    hint = (
        f"; nearest: {', '.join(near)}" if near else (f"; it saw e.g. {', '.join(sorted(known)[:3])}" if known else "")
    )
    raise NcbenchError(f"no night in these {len(nights)} health run(s) tested a node named {node!r}{hint}", EXIT_USAGE)


def rows(nights: list[dict], node: str | None = None) -> list[dict]:
    """Return one row per night: the fleet's counts, or one node's state and evidence (one sentence for a node no
    night saw; a night that did not test it says `not tested`)."""
    if node is not None:
        check_node(nights, node)
    out = []
    for v in nights:
        row = {"started": v["started"], "run_id": v["run_id"], "suite": v.get("suite", ""), "status": v["status"]}
        if node is None:
            row.update(v.get("summary_nodes", {}))
            row["rounds"] = v.get("rounds")
            reference = v.get("classes", {}).get(TREND_CLASS)
            row[f"{TREND_CLASS}_GBps"] = round(reference, 3) if reference is not None else None
        else:
            mine = [e for e in v.get("entities", []) if e.get("node") == node or node in e.get("ends", [])]
            tested = node in seen(v) if v.get("nodes") else True  # a night whose nodes are unknown: assume tested
            row["node_status"] = v.get("node_status", {}).get(node, "PASS") if tested else "not tested"
            row["codes"] = ",".join(sorted({e["code"] for e in mine}))
            ratios = [x["ratio_to_peers"] for e in mine for x in e["evidence"] if x.get("ratio_to_peers")]
            row["ratio_to_peers"] = min(ratios) if ratios else None
        out.append(row)
    return out


def render(table: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json_lines(table)
    columns = list(dict.fromkeys(k for r in table for k in r))
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in table]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines) + "\n"
