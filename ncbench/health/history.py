"""A node's or the fleet's trend over nights, from the verdicts kept under results/health/.

results/health/<run_id>/verdict.json (any number) -> one row per night: state, counts, class peer references,
and for one node its state, reason and ratio -> a table or JSON lines.
"""

import json
from pathlib import Path

from ..errors import EXIT_DATAERR, EXIT_NOINPUT, NcbenchError
from ..records import read_json
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
        nights.append(v)
    return sorted(nights, key=lambda v: v["started"])


def rows(nights: list[dict], node: str | None = None) -> list[dict]:
    """Return one row per night: the fleet's counts, or one node's state and evidence."""
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
            row["node_status"] = v.get("node_status", {}).get(node, "PASS")
            row["codes"] = ",".join(sorted({e["code"] for e in mine}))
            ratios = [x["ratio_to_peers"] for e in mine for x in e["evidence"] if x.get("ratio_to_peers")]
            row["ratio_to_peers"] = min(ratios) if ratios else None
        out.append(row)
    return out


def render(table: list[dict], fmt: str) -> str:
    if fmt == "json":
        return "".join(json.dumps(r) + "\n" for r in table)
    columns = list(dict.fromkeys(k for r in table for k in r))
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in table]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines) + "\n"
