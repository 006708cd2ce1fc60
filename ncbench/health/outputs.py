"""Where operators look: verdict JSON, Prometheus textfile, JUnit XML, Slurm drain commands, one-line summaries.

Night (suite.Night) + run facts -> verdict dict (schema ncbench.health.verdict/1) -> the other formats, each written
whole or not at all (temp file + rename). Fields and metrics: docs/formats.md, "Health outputs".
"""

import math
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ..records import write_atomic, write_json
from . import CODES, FAIL, PASS, SKIPPED, STATE_VALUE, UNKNOWN, WARN

SCHEMA = "ncbench.health.verdict/1"
EXIT = {PASS: 0, WARN: 1, FAIL: 2, UNKNOWN: 3}
SEVERITY = (FAIL, UNKNOWN, WARN, PASS)  # the run's status is the first of these any entity has
DRAIN_PREFIX = "ncbench: "  # every reason we set starts so; we never touch a reason without it (LBNL NHC)
SKIP_STATES = ("down", "drain", "maint", "reserved", "resv", "power", "fail")  # Slurm states left alone


def worst(states) -> str:
    present = set(states)
    return next((s for s in SEVERITY if s in present), PASS)


def verdict(outcome, *, run: dict, names: list[str], fabric: dict, baseline: dict) -> dict:
    """Return the run's verdict: status, exit code, coverage, per-state counts, non-PASS entities."""
    for e in outcome.entities:
        e.setdefault("hardware_impact", CODES[e["code"]][1])
    by_node: dict[str, list[str]] = {}
    for e in outcome.entities:
        if "node" in e:  # a path's two ends are not blamed: the pair entity stands on its own
            by_node.setdefault(e["node"], []).append(e["status"])
    node_states = {n: worst(by_node.get(n, [PASS])) for n in names}
    stage_states = [s["status"] for s in outcome.stages if s["status"] == UNKNOWN]
    status = worst([e["status"] for e in outcome.entities] + stage_states)
    summary = {s: 0 for s in (PASS, WARN, FAIL, UNKNOWN, SKIPPED)}
    for state in node_states.values():
        summary[state] += 1
    return {
        "schema": SCHEMA,
        **run,
        "status": status,
        "exit_code": EXIT[status],
        "coverage": {
            "nodes_expected": len(names),
            "nodes_tested": len(names) - outcome.unknown_nodes,
            "unknown": outcome.unknown_nodes,
        },
        "rounds": outcome.rounds,
        "fabric": fabric,
        "baseline": baseline,
        "summary_nodes": summary,
        "stages": outcome.stages,
        "classes": {k: round(v, 6) for k, v in outcome.classes.items()},
        "entities": sorted(outcome.entities, key=lambda e: (SEVERITY.index(e["status"]), e["kind"], e["id"])),
        "node_status": {n: s for n, s in node_states.items() if s != PASS},
        "nodes": list(names),  # every node the night tested, so `health history --node` knows a name it never saw
    }


def drain_plan(v: dict, *, max_drain_fraction: float, emulated: bool) -> dict:
    """Return which nodes to drain and why: confirmed hardware FAILs only, capped per night."""
    reasons: dict[str, str] = {}
    for e in v["entities"]:
        if e["status"] == FAIL and e["hardware_impact"] and e.get("drain", True) and "node" in e:
            rail = f" rail{e['rail']}" if "rail" in e else ""
            ratio = next((x.get("ratio_to_peers") for x in e["evidence"] if x.get("ratio_to_peers")), None)
            shown = f" {ratio:.2f}x" if ratio else ""
            reasons.setdefault(e["node"], f"{DRAIN_PREFIX}{e['code']}{rail}{shown} run={v['run_id']}")
    cap = max(1, math.floor(max_drain_fraction * v["coverage"]["nodes_expected"]))
    plan = {"cap": cap, "nodes": reasons, "held_back": False, "note": ""}
    if len(reasons) > cap:
        plan.update(
            nodes={},
            held_back=True,
            note=f"{len(reasons)} nodes failed, more than the cap of {cap}: a shared cause is likelier than "
            f"{len(reasons)} bad nodes; nothing drained (NCB-SHARED-CAUSE)",
        )
    elif emulated and reasons:
        plan["note"] = "nodes are emulated (--ranks-per-node): the commands below name no real Slurm node"
    return plan


def drain_commands(plan: dict) -> list[str]:
    return [f'scontrol update NodeName={node} State=DRAIN Reason="{reason}"' for node, reason in plan["nodes"].items()]


def execute_drains(plan: dict, run=None) -> list[str]:
    """Drain the planned nodes with scontrol, skipping any a person or Slurm already took out; return what happened."""
    import subprocess

    run = run or (lambda cmd: subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False))
    done = []
    for node, reason in plan["nodes"].items():
        state = run(["sinfo", "-h", "-N", "-n", node, "-o", "%T|%E"])
        current, _, old_reason = (state.stdout.strip().splitlines() or ["|"])[0].partition("|")
        if any(s in current.lower() for s in SKIP_STATES) and not old_reason.startswith(DRAIN_PREFIX.strip()):
            done.append(f"{node}: left alone, Slurm state {current!r} reason {old_reason!r} is not ours")
            continue
        result = run(["scontrol", "update", f"NodeName={node}", "State=DRAIN", f"Reason={reason}"])
        done.append(
            f"{node}: drained ({reason})"
            if result.returncode == 0
            else f"{node}: scontrol failed: {result.stderr.strip()}"
        )
    return done


def _label(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(value: float) -> str:
    """Return a sample value as Prometheus' text format spells it (NaN, +Inf, -Inf; a timestamp needs 10 digits)."""
    if value is None or math.isnan(value):
        return "NaN"
    return ("+Inf" if value > 0 else "-Inf") if math.isinf(value) else f"{value:.10g}"


def _gauge(name: str, help_text: str, samples) -> list[str]:
    """Return one gauge in Prometheus' text format: HELP, TYPE, then a line per (labels, value) sample."""
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        text = ",".join(f'{k}="{_label(x)}"' for k, x in labels.items())
        out.append(f"{name}{{{text}}} {_sample(value)}" if text else f"{name} {_sample(value)}")
    return out


def _status_samples(v: dict) -> list[tuple[dict, float]]:
    """Return the run's state and each non-PASS entity's, labelled with what it is and where."""
    entities = [
        (
            {
                "entity": e["kind"],
                "id": e["id"],
                "node": e.get("node", ""),
                "rail": e.get("rail", ""),
                "code": e["code"],
            },
            STATE_VALUE[e["status"]],
        )
        for e in v["entities"]
    ]
    return [({"entity": "run", "suite": v["suite"]}, STATE_VALUE[v["status"]])] + entities


def _state_gauges(v: dict) -> list[tuple[str, str, list]]:
    """Return the gauges of states: the run's and each non-PASS entity's, each stage's, nodes per state."""
    return [
        (
            "ncbench_health_status",
            "Verdict of the last ncbench health run (0=PASS,1=WARN,2=FAIL,3=UNKNOWN,4=SKIPPED).",
            _status_samples(v),
        ),
        (
            "ncbench_health_stage_status",
            "State of each stage of the last run (same encoding).",
            [({"stage": s["stage"]}, STATE_VALUE[s["status"]]) for s in v["stages"]],
        ),
        (
            "ncbench_health_nodes",
            "Nodes per state in the last run.",
            [({"state": k}, n) for k, n in v["summary_nodes"].items()],
        ),
    ]


def _bandwidth_gauges(v: dict) -> list[tuple[str, str, list]]:
    """Return each class's peer reference, and its ratio to the baseline where the baseline has the class."""
    gauges = [
        (
            "ncbench_health_busbw_bytes_per_second",
            "Peer reference bus bandwidth of each test class (median; best below 5 tests).",
            [({"class": k}, x * 1e9) for k, x in v["classes"].items()],
        )
    ]
    ratios = [
        ({"class": k}, v["classes"][k] / b["p50"])
        for k, b in v["baseline"].get("classes", {}).items()
        if k in v["classes"]
    ]
    if ratios:
        gauges.append(("ncbench_health_ratio_to_baseline", "Class peer reference divided by the baseline p50.", ratios))
    return gauges


def prometheus(v: dict, finished_s: float) -> str:
    """Return node_exporter textfile metrics: run, stage and non-PASS entity states, class references, staleness."""
    gauges = _state_gauges(v) + _bandwidth_gauges(v)
    gauges.append(("ncbench_health_rounds", "Rounds the last run used.", [({}, v["rounds"])]))
    gauges.append(
        (
            "ncbench_health_last_run_timestamp_seconds",
            "Unix time the last run finished (alert when stale).",
            [({}, finished_s)],
        )
    )
    if v["status"] == PASS:
        gauges.append(
            (
                "ncbench_health_last_success_timestamp_seconds",
                "Unix time of the last run that passed.",
                [({}, finished_s)],
            )
        )
    return "\n".join(line for gauge in gauges for line in _gauge(*gauge)) + "\n"


def junit(v: dict, names: list[str]) -> str:
    """Return JUnit XML: a suite of nodes, one of fabric findings, one of stages (WARN passes with system-out)."""

    def case(classname, name, status, message="", kind=""):
        head = f"    <testcase classname={quoteattr(classname)} name={quoteattr(name)}"
        if status == FAIL:
            return f"{head}><failure type={quoteattr(kind)} message={quoteattr(message)}/></testcase>"
        if status == UNKNOWN:
            return f"{head}><error type={quoteattr(kind)} message={quoteattr(message)}/></testcase>"
        if status == SKIPPED:
            return f"{head}><skipped message={quoteattr(message)}/></testcase>"
        if status == WARN:
            body = f"WARN {kind} {message}".replace("]]>", "]]&gt;")
            return f"{head}><system-out><![CDATA[{body}]]></system-out></testcase>"
        return f"{head}/>"

    first = {}
    for e in v["entities"]:
        first.setdefault(e.get("node"), e)
    nodes = [
        case("ncbench.health.nodes", n, s, line(first[n]) if n in first else "", first[n]["code"] if n in first else "")
        for n, s in [(n, v["node_status"].get(n, PASS)) for n in names]
    ]
    fabric = [
        case("ncbench.health.fabric", e["id"], e["status"], line(e), e["code"])
        for e in v["entities"]
        if "node" not in e
    ]
    stages = [
        case("ncbench.health.stages", s["stage"], s["status"], s["note"] or f"{s['tests']} tests, {s['slow']} slow")
        for s in v["stages"]
    ]
    suites = []
    for name, cases in (("nodes", nodes), ("fabric", fabric), ("stages", stages)):
        failures = sum("<failure" in c for c in cases)
        errors = sum("<error" in c for c in cases)
        skipped = sum("<skipped" in c for c in cases)
        suites.append(
            f'  <testsuite name="ncbench.health.{name}" tests="{len(cases)}" failures="{failures}" '
            f'errors="{errors}" skipped="{skipped}" timestamp={quoteattr(v["started"])}>'
        )
        suites += cases
        suites.append("  </testsuite>")
    total = sum(c.startswith("    <testcase") for c in suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites name="ncbench-health" tests="{total}" timestamp={quoteattr(v["started"])}>\n'
        + "\n".join(suites)
        + "\n</testsuites>\n"
    )


def line(e: dict) -> str:
    """Return the one-line account of an entity: what, how slow against what, how sure."""
    where = f" rail{e['rail']}" if "rail" in e and e["kind"] != "nic" else ""
    ev = next((x for x in reversed(e["evidence"]) if x.get("value") is not None), None)
    if ev:
        base = f"baseline {ev['baseline_p50']:.3g}" if ev.get("baseline_p50") else ""
        if ev.get("peers", 0) > 1:
            ratio = f" ({ev['ratio_to_peers']:.2f}x peers {ev['peer_ref']:.3g}{', ' + base if base else ''})"
        else:
            ratio = f" ({ev['ratio_to_baseline']:.2f}x {base})" if base else ""
        how = f" {ev['value']:.3g} GB/s{ratio}"
    else:
        how = " " + "; ".join(_describe(x) for x in e["evidence"][:1])
    strikes = " confirmed" if e["status"] == FAIL and len(e["evidence"]) > 1 else ""
    if e["code"] == "NCB-NOISY":
        spread = max((x.get("spread") or 0, x.get("peer_spread") or 0) for x in e["evidence"])
        strikes = f" looked like {e.get('suspected')}, but within the measurement's noise (spread {max(spread):.2f}): not confirmed"
    return f"{e['status']} {e['code']}{where}{how}{strikes}".rstrip()


def _describe(x: dict) -> str:
    """Return a piece of evidence without a value in words: its note, or what it names, never a raw dict."""
    if x.get("note"):
        return str(x["note"])
    if "from" in x:
        return f"data from {x['from']} arrived wrong ({x.get('stage', '?')} stage, {x.get('test', '?')} test)"
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in x.items())


def summary(v: dict, plan: dict) -> list[str]:
    """Return the lines a person reads first: status, coverage, stages, one line per finding, drains."""
    cov = v["coverage"]
    lines = [
        (
            f"ncbench health {v['suite']}: {v['status']} (exit {v['exit_code']}) - {cov['nodes_expected']} nodes x "
            f"{v['fabric']['rails']} rail(s), {v['rounds']} rounds, run {v['run_id']}"
        ),
        (
            f"coverage: tested {cov['nodes_tested']} / {cov['nodes_expected']} nodes; {cov['unknown']} UNKNOWN; "
            f"baseline: {v['baseline'].get('note') or 'none'}"
        ),
    ]
    for s in v["stages"]:
        extra = f"; {s['note']}" if s["note"] else ""
        lines.append(
            f"  stage {s['stage']:<8} {s['status']:<7} {s['tests']} tests, {s['slow']} slow, {s['unanswered']} unanswered{extra}"
        )
    for e in v["entities"]:
        lines.append(f"{e['id']} | {line(e)}")
    if plan["note"]:
        lines.append(f"drain: {plan['note']}")
    for cmd in drain_commands(plan):
        lines.append(f"drain{'' if v.get('drain_executed') else ' (dry run; --drain executes)'}: {cmd}")
    return lines


def write_all(out_dir: Path, v: dict, plan: dict, names: list[str], *, prom_dir: Path | None = None) -> dict[str, Path]:
    """Write verdict.json, ncbench_health.prom, junit.xml and drain.sh into `out_dir` (and the textfile dir)."""
    finished = time.time()
    prom = prometheus(v, finished)
    files = {
        "verdict": write_json(out_dir / "verdict.json", {**v, "drain": plan}),
        "prom": write_atomic(out_dir / "ncbench_health.prom", prom),
        "junit": write_atomic(out_dir / "junit.xml", junit(v, names)),
        "drain": write_atomic(
            out_dir / "drain.sh",
            "#!/bin/sh\n# ncbench health: confirmed failures only\n" + "".join(c + "\n" for c in drain_commands(plan)),
        ),
    }
    files["drain"].chmod(0o755)  # a script an operator runs as it is
    if prom_dir is not None:
        files["textfile"] = write_atomic(prom_dir / "ncbench_health.prom", prom)
    return files
