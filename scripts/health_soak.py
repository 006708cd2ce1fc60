#!/usr/bin/env python3
"""Soak the nightly check on this machine: clean runs must never FAIL or drain, injected faults must be named.

Runs the README's one-machine command (`mpiexec -n 4 ncbench health --suite quick --ranks-per-node 1`) and
`scripts/health-nightly` --runs times each, optionally beside --load busy processes (a check shares its
nodes with daemons), then each injected fault once. Prints one line per run and a summary; exits 1 when a
clean run FAILed or printed a drain command, or a fault was not named with its exit code.

    .venv/bin/python scripts/health_soak.py --runs 20 --load 1
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICK = ["health", "--suite", "quick", "--ranks-per-node", "1"]  # as the README shows it
FAULTS = [  # (NCBENCH_INJECT, exit code, reason code that must be named)
    ("delay:rank=1:us=3000", 2, "NCB-NIC-LOOPBACK"),
    ("delay:rank=2:us=3000:peer=3", 2, "NCB-PAIR-SLOW"),
    ("corrupt:rank=2", 2, "NCB-DATA-CORRUPT"),
    ("stall:rank=3", 3, "NCB-UNREACHABLE"),
]


def ncbench_env() -> dict:
    venv = ROOT / ".venv" / "bin"
    return {**os.environ, "PATH": f"{venv}{os.pathsep}{os.environ['PATH']}" if venv.is_dir() else os.environ["PATH"]}


def quick(out: Path, inject: str = "", timeout_s: float = 5.0) -> tuple[int, dict | None, str]:
    env = {**ncbench_env(), "NCBENCH_INJECT": inject}
    cmd = ["mpiexec", "-n", "4", "ncbench", *QUICK, "--out", str(out)] + (["-T", f"{timeout_s:g}"] if inject else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180, check=False)
    return done.returncode, _verdict(out), done.stdout + done.stderr


def nightly(out: Path, baselines: Path) -> tuple[int, dict | None, str]:
    env = {**ncbench_env(), "HEALTH_BASELINES": str(baselines), "HEALTH_ARGS": f"--out {out}"}
    done = subprocess.run(
        [str(ROOT / "scripts" / "health-nightly")], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    return done.returncode, _verdict(out), done.stdout + done.stderr


def _verdict(out: Path) -> dict | None:
    path = out / "verdict.json"
    return json.loads(path.read_text()) if path.exists() else None


def findings(verdict: dict | None) -> str:
    if verdict is None:
        return "no verdict"
    return ", ".join(f"{e['status']} {e['code']}" for e in verdict["entities"]) or "-"


def start_load(count: int) -> list[subprocess.Popen]:
    spin = "import time\nend = time.monotonic() + 3600\nwhile time.monotonic() < end: pass\n"
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]


def soak(runs: int, load: int, work: Path) -> list[str]:
    """Return the problems found: clean runs that FAILed or drained, faults not named."""
    problems, codes = [], Counter()
    busy = start_load(load)
    try:
        for i in range(runs):
            for name, result in (("quick", quick(work / f"q{i}")), ("nightly", nightly(work / f"n{i}", work / "bl"))):
                code, verdict, text = result
                codes[(name, code)] += 1
                drained = "scontrol update" in text
                print(
                    f"clean {name:<7} run {i + 1:>2}: exit {code}  {findings(verdict)}{'  DRAIN' if drained else ''}",
                    flush=True,
                )
                if code not in (0, 1) or drained or (verdict and verdict["status"] == "FAIL"):
                    problems.append(f"clean {name} run {i + 1}: exit {code}, {findings(verdict)}")
        for inject, want_code, want_reason in FAULTS:
            code, verdict, _ = quick(work / f"f{len(problems)}-{inject.replace(':', '_')}", inject)
            named = verdict is not None and any(e["code"] == want_reason for e in verdict["entities"])
            print(f"fault {inject:<28}: exit {code} (want {want_code})  {findings(verdict)}", flush=True)
            if code != want_code or not named:
                problems.append(f"fault {inject}: exit {code} (want {want_code}), {findings(verdict)}")
    finally:
        for proc in busy:
            proc.kill()
    summary = ", ".join(f"{name} exit {code}: {n}" for (name, code), n in sorted(codes.items()))
    print(f"# {runs} clean runs of each beside {load} busy process(es): {summary}; problems: {len(problems)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="clean runs of each command")
    parser.add_argument("--load", type=int, default=0, help="busy processes beside the runs")
    args = parser.parse_args()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ncbench-soak-") as tmp:
        problems = soak(args.runs, args.load, Path(tmp))
    print(f"# {time.monotonic() - start:.0f} s")
    for problem in problems:
        print(f"PROBLEM {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
