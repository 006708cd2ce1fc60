#!/usr/bin/env python3
"""Time `ncbench report` on a week of nightly runs plus the default prediction sweep (target: under 10 s).

The week is the committed runs (results/runs: nine runs, every collective and p2p) copied once per night
under new run ids, with the committed health nights; each render is a fresh process, as a person runs it.
Usage: .venv/bin/python scripts/bench_report.py [--repeat 3]
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NIGHTS = 7


def week(folder: Path) -> Path:
    runs = folder / "runs"
    runs.mkdir()
    for night in range(NIGHTS):
        for csv in sorted((ROOT / "results/runs").glob("*.csv")):
            stem = f"202612{night + 1:02d}T020000Z-night{night + 1}-{csv.stem.split('-', 1)[1]}"
            shutil.copy(csv, runs / f"{stem}.csv")
            shutil.copy(csv.with_suffix(".json"), runs / f"{stem}.json")
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = week(Path(tmp))
        rows = sum(len(f.read_text().splitlines()) - 1 for f in runs.glob("*.csv"))  # less each header
        print(
            f"# {len(list(runs.glob('*.csv')))} runs ({rows:,} rows) over {NIGHTS} nights + "
            "results/predictions/default-sweep.csv + results/health"
        )
        seconds = []
        for i in range(args.repeat):
            out = Path(tmp) / f"report{i}"
            cmd = [
                sys.executable,
                "-m",
                "ncbench",
                "report",
                str(runs),
                "--predictions",
                str(ROOT / "results/predictions/default-sweep.csv"),
                "--health",
                str(ROOT / "results/health"),
                "--out",
                str(out),
            ]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
            seconds.append(time.perf_counter() - t0)
            size = (out / "report.html").stat().st_size
            print(f"render {i + 1}: {seconds[-1]:.2f} s, report.html {size / 1e6:.2f} MB")
        print(f"median {statistics.median(seconds):.2f} s over {args.repeat} renders (target 10 s)")


if __name__ == "__main__":
    main()
