#!/usr/bin/env python3
"""Health planning at scale: rounds, wall time and findings of the nightly suite on simulated fabrics.

Runs the real scheduling and attribution (ncbench.health) on 25,000 and 125,000 nodes (200k and 1M
GPUs at 8 per node) of the Colossus-style design, with seeded faults, and prints what was found,
missed and wrongly blamed, and how long the simulation took. Usage:
    .venv/bin/python scripts/bench_health_sim.py [--trials 100]
"""

import argparse
import statistics
import time

from ncbench.health.simulate import simulate
from ncbench.model import topology

DESIGN = "topologies/colossus-spectrum-x-200k.toml"
CASES = ((25000, 5, 3, 1), (125000, 10, 3, 2))  # nodes, bad nodes, bad links, bad NICs
ROUND_S = 10.0  # docs/health.md: small-group rounds take seconds; 10 s is conservative


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    design = topology.load(DESIGN)
    print(f"# {DESIGN}, nightly suite, faults at 0.5x, noise 2 % (log sd), {args.trials} seeded trials per case")
    print(
        f"{'nodes':>8} {'faults':>14} {'rounds':>7} {'wall':>7} {'all-pairs':>10} {'found':>7} {'missed':>7} "
        f"{'wrong':>6} {'sim s (median)':>15}"
    )
    for nodes, bad_nodes, bad_links, bad_nics in CASES:
        rounds, found, missed, wrong, seconds = [], 0, 0, 0, []
        for seed in range(args.trials):
            t0 = time.perf_counter()
            r = simulate(design, nodes=nodes, bad_nodes=bad_nodes, bad_links=bad_links, bad_nics=bad_nics, seed=seed)
            seconds.append(time.perf_counter() - t0)
            rounds.append(r["rounds"])
            found, missed, wrong = found + len(r["found"]), missed + len(r["missed"]), wrong + len(r["wrongly_blamed"])
        faults = f"{bad_nodes}n+{bad_links}l+{bad_nics}nic"
        print(
            f"{nodes:>8,} {faults:>14} {max(rounds):>7} {max(rounds) * ROUND_S:>6.0f}s {nodes - 1:>10,} {found:>7} "
            f"{missed:>7} {wrong:>6} {statistics.median(seconds):>15.2f}"
        )


if __name__ == "__main__":
    main()
