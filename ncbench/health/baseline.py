"""Baselines keyed by a fingerprint of what moves the numbers; an upgrade starts a new one.

facts (hardware, versions, backend, suite, topology) -> fingerprint id; --baseline FILE | DIR ->
{class key: {p50, mad, nights}}; tonight's class peer references -> the next baseline (rolling window of
healthy nights, written whole or not at all). docs/health.md, "Baselines".
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from ..errors import EXIT_DATAERR, EXIT_NOINPUT, NcbenchError
from ..records import read_json, write_json

SCHEMA = "ncbench.health.baseline/1"
WINDOW_NIGHTS = 14  # the last K healthy nights make the baseline: two weeks, a rolling window (docs/health.md)


def fingerprint(facts: dict) -> str:
    """Return a short stable id of the facts (same facts, same id; any change, a new baseline)."""
    text = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def locate(path: Path, fp_id: str) -> Path:
    """Return the baseline file for this fingerprint: `path` itself, or `path/<fp_id>.json` in a directory."""
    if path.is_dir() or (not path.exists() and path.suffix != ".json"):
        return path / f"{fp_id}.json"
    return path


def load(path: Path, fp_id: str, facts: dict, *, update: bool) -> tuple[dict, str]:
    """Return (class key -> stats, a note) for tonight; NcbenchError for a missing, corrupt or foreign file."""
    target = locate(path, fp_id)
    in_dir = target != path
    if not target.exists():
        if in_dir and path.is_dir():
            others = sorted(p.stem for p in path.glob("*.json"))
            seen = f" (it holds baselines for {len(others)} other fingerprint(s))" if others else ""
            return {}, f"no baseline for fingerprint {fp_id} in {path}{seen}: judged against peers only" + (
                "; tonight starts one" if update else "; --update-baseline starts one"
            )
        if update:
            return {}, f"{target} does not exist yet: judged against peers only; tonight starts it"
        raise NcbenchError(
            f"baseline {target} does not exist; give an existing file or directory, or add --update-baseline to start one",
            EXIT_NOINPUT,
        )
    doc = read(target)
    if doc.get("fingerprint_id") != fp_id:
        changed = sorted(
            k for k in set(facts) | set(doc.get("fingerprint", {})) if facts.get(k) != doc.get("fingerprint", {}).get(k)
        )
        detail = ", ".join(f"{k}: {doc.get('fingerprint', {}).get(k)!r} -> {facts.get(k)!r}" for k in changed[:4])
        raise NcbenchError(
            f"{target} is the baseline of another configuration ({detail or 'fingerprint differs'}); an upgrade "
            f"starts a new baseline: pass the directory with --update-baseline, or a baseline of fingerprint {fp_id}",
            EXIT_DATAERR,
        )
    return doc.get("classes", {}), f"baseline {target.name}: {len(doc.get('nights', []))} night(s)"


def read(target: Path) -> dict:
    """Return a baseline document, or raise one sentence saying why it is not one."""
    doc = read_json(target, "not a readable baseline; restore it or start a new one")
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("classes"), dict):
        raise NcbenchError(f"{target}: not an ncbench health baseline (schema {SCHEMA} expected)", EXIT_DATAERR)
    for key, stats in doc["classes"].items():
        if not isinstance(stats, dict) or not isinstance(stats.get("p50"), int | float) or stats["p50"] <= 0:
            raise NcbenchError(f"{target}: class {key!r} has no positive p50; the file is damaged", EXIT_DATAERR)
    return doc


def update(path: Path, fp_id: str, facts: dict, classes: dict[str, float], run_id: str, date: str) -> Path:
    """Add tonight's class peer references to the baseline (the last WINDOW_NIGHTS nights), written atomically."""
    target = locate(path, fp_id)
    doc = (
        read(target)
        if target.exists()
        else {"schema": SCHEMA, "fingerprint_id": fp_id, "fingerprint": facts, "nights": []}
    )
    nights = [n for n in doc["nights"] if n["run_id"] != run_id] + [
        {"run_id": run_id, "date": date, "classes": classes}
    ]
    nights = nights[-WINDOW_NIGHTS:]
    stats = {}
    for key in sorted({k for n in nights for k in n["classes"]}):
        values = np.array([n["classes"][key] for n in nights if key in n["classes"]])
        median = float(np.median(values))
        stats[key] = {
            "p50": round(median, 6),
            "mad": round(float(np.median(np.abs(values - median))), 6),
            "nights": len(values),
            "unit": "GBps",
        }
    doc.update(
        nights=nights, classes=stats, method=f"median of the last {WINDOW_NIGHTS} healthy nights' class peer references"
    )
    return write_json(target, doc)
