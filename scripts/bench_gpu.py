#!/usr/bin/env python3
"""On one GPU: NCCL allreduce against the device's own copy bandwidth, and --graph against launches.

Targets (issue 3): size-1 NCCL allreduce algbw at 1 GiB >= 0.9 x the CuPy device-to-device copy
bandwidth measured in the same run; in --graph mode the small-message host time within 2 us of the
CUDA-event device time. Writes its runs to results/runs/ (real data, kept).
Usage: .venv/bin/python scripts/bench_gpu.py   (needs CuPy and a GPU; mpiexec beside this Python)
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

COPY_BYTES = 1 << 30


def copy_bandwidth_GBps(nbytes: int = COPY_BYTES, reps: int = 20) -> float:
    """Return the device-to-device copy bandwidth, bytes copied per second (not read + write)."""
    import cupy

    src, dst = cupy.ones(nbytes, dtype=cupy.uint8), cupy.empty(nbytes, dtype=cupy.uint8)
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    for _ in range(3):
        dst[...] = src
    best = float("inf")
    for _ in range(reps):
        start.record()
        dst[...] = src
        stop.record()
        stop.synchronize()
        best = min(best, cupy.cuda.get_elapsed_time(start, stop) * 1e-3)
    return nbytes / best / 1e9


def ncbench(*args) -> list[dict]:
    mpiexec = str(Path(sys.executable).parent / "mpiexec") if (Path(sys.executable).parent / "mpiexec").exists() else shutil.which("mpiexec")
    cmd = [mpiexec, "-n", "1", sys.executable, "-m", "ncbench", *args, "--backend", "nccl", "--format", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def main() -> None:
    copy = copy_bandwidth_GBps()
    big = next(r for r in ncbench("allreduce", "-b", "1G", "-e", "1G", "--samples", "10") if not r["in_place"])
    print(f"device copy bandwidth          {copy:8.1f} GB/s (CuPy d2d, 1 GiB, best of 20)")
    print(f"size-1 allreduce algbw, 1 GiB  {big['algbw_GBps']:8.1f} GB/s  ratio {big['algbw_GBps'] / copy:.3f} (target >= 0.9)")
    for graph in (False, True):
        rows = ncbench("allreduce", "-b", "8", "-e", "8K", "-f", "4", *(["--graph"] if graph else []))
        label = "graph " if graph else "launch"
        for r in rows:
            if not r["in_place"]:
                gap = r["time_us"] - r["device_time_us"]
                print(f"{label} {r['nbytes']:>6} B  host {r['time_us']:7.2f} us  device {r['device_time_us']:7.2f} us  "
                      f"host - device {gap:+6.2f} us{'  (target <= 2)' if graph else ''}")


if __name__ == "__main__":
    main()
