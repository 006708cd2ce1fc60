#!/usr/bin/env python3
"""Time the whole default prediction sweep, and show its cost does not grow with the number of GPUs.

All ops x all algorithms x 3 protocols x sizes 8 B-16 GiB x 200k-1M GPUs x every shipped topology,
with the 200-draw uncertainty band, in one process (topology files read once). Target (issue 15): at most 1 s on
the 2-core machine. Printed: the median and spread of several repetitions, then the same sweep at
2k-10k and at 2M-10M GPUs.

    .venv/bin/python scripts/bench_predict.py [--repeat 5]
"""

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ncbench.model import predict, topology


def sweep(designs, gpus) -> tuple[float, int]:
    start = time.perf_counter()
    rows = 0
    for design in designs:
        rows += len(predict.predict(design, gpus=gpus, algorithms=("all", "auto")))
        rows += len(predict.scale_costs(design, gpus))
    return time.perf_counter() - start, rows


def main() -> int:
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 5
    designs = [topology.load(p) for p in topology.shipped(ROOT / "topologies")]
    scales = {
        "2k-10k": (2_000, 4_000, 6_000, 8_000, 10_000),
        "200k-1M (default)": predict.DEFAULT_GPUS,
        "2M-10M": (2_000_000, 4_000_000, 6_000_000, 8_000_000, 10_000_000),
    }
    sweep(designs, predict.DEFAULT_GPUS)  # warm numpy and pandas once
    medians = {}
    for label, gpus in scales.items():
        times = []
        for _ in range(repeat):
            seconds, rows = sweep(designs, gpus)
            times.append(seconds)
        medians[label] = statistics.median(times)
        print(
            f"{label:<18} {len(designs)} topologies, {rows:,} rows: median {medians[label]:.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f}, {repeat} runs)"
        )
    default = medians["200k-1M (default)"]
    print(
        f"default sweep {default:.3f} s vs target 1 s: {'OK' if default <= 1 else 'MISS'}; "
        f"cost ratio 2M-10M / 2k-10k = {medians['2M-10M'] / medians['2k-10k']:.2f}x for 1000x the GPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
