#!/usr/bin/env python3
"""On one GPU: NCCL allreduce against the device's own copy bandwidth, and --graph against launches.

Targets (issue 3), measured side by side in one run:
  1. size-1 NCCL allreduce algbw at 1 GiB >= 0.9 x the device-to-device copy bandwidth (cudaMemcpyAsync
     and CuPy's copy kernel, the faster of the two; bytes copied per second, as algbw counts them);
  2. in --graph mode, small-message host time per op within 2 us of the CUDA-event device time.
It also prints the per-operation launch cost (host - device) without and with --graph.
Copy bandwidth is a median; op times are means over samples (as device times are); every run is kept under --results with its metadata.

Usage: python scripts/bench_gpu.py [--results DIR] [--summary FILE]   (CuPy, a GPU, mpiexec beside Python or on PATH)
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

COPY_BYTES = 1 << 30
SMALL = ("-b", "8", "-e", "64K", "-f", "8")


def copy_bandwidth_GBps(nbytes: int = COPY_BYTES, reps: int = 20) -> dict:
    """Return median device-to-device copy bandwidth (bytes copied per second) two ways."""
    import cupy

    src, dst = cupy.ones(nbytes, dtype=cupy.uint8), cupy.empty(nbytes, dtype=cupy.uint8)
    stream = cupy.cuda.Stream(non_blocking=True)
    cupy.cuda.Device().synchronize()  # cupy.ones ran on the legacy stream, unordered with `stream`
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    runtime = cupy.cuda.runtime

    def memcpy():
        runtime.memcpyAsync(dst.data.ptr, src.data.ptr, nbytes, runtime.memcpyDeviceToDevice, stream.ptr)

    def kernel():
        with stream:
            dst[...] = src

    out = {}
    for name, copy in (("memcpy", memcpy), ("kernel", kernel)):
        for _ in range(3):
            copy()
        times = []
        for _ in range(reps):
            start.record(stream)
            copy()
            stop.record(stream)
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop) * 1e-3)
        out[name] = nbytes / statistics.median(times) / 1e9
    return out


def mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if not found:
        sys.exit("bench_gpu: no mpiexec beside this Python or on PATH (pip install mpich)")
    return found


def ncbench(results: Path, name: str, *args) -> list[dict]:
    """Run one size-1 NCCL measurement; return its out-of-place rows (the run is kept in `results`)."""
    out = results / f"{name}.csv"
    cmd = [
        mpiexec(),
        "-n",
        "1",
        sys.executable,
        "-m",
        "ncbench",
        *args,
        "--backend",
        "nccl",
        "--format",
        "json",
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"bench_gpu: {' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return [r for r in map(json.loads, done.stdout.splitlines()) if not r["in_place"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/runs"), help="where the runs are kept")
    parser.add_argument("--summary", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)

    copy = copy_bandwidth_GBps()
    reference = max(copy.values())
    big = ncbench(args.results, "bench-allreduce-1G", "allreduce", "-b", "1G", "-e", "1G", "--samples", "20")[0]
    ratio = big["algbw_GBps"] / reference
    print(f"device copy, cudaMemcpyAsync    {copy['memcpy']:8.1f} GB/s (1 GiB, median of 20, bytes copied per second)")
    print(f"device copy, CuPy copy kernel   {copy['kernel']:8.1f} GB/s")
    print(
        f"size-1 allreduce algbw, 1 GiB   {big['algbw_GBps']:8.1f} GB/s (p50 time {big['time_us_p50']:.0f} us)  "
        f"ratio {ratio:.3f} {'meets' if ratio >= 0.9 else 'MISSES'} >= 0.9"
    )
    runs = {
        graph: ncbench(
            args.results,
            f"bench-allreduce-small-{'graph' if graph else 'launch'}",
            "allreduce",
            *SMALL,
            "--samples",
            "20",
            *(["--graph"] if graph else []),
        )
        for graph in (False, True)
    }
    small = []
    print(
        f"{'size':>8}  {'launch: host':>13} {'device':>8} {'host-dev':>9}   {'graph: host':>12} {'device':>8} "
        f"{'host-dev':>9}  target (graph host-dev <= 2 us)"
    )
    for plain, graphed in zip(runs[False], runs[True], strict=True):
        gap_plain = plain["time_us"] - plain["device_time_us"]
        gap_graph = graphed["time_us"] - graphed["device_time_us"]
        small.append(
            {
                "nbytes": plain["nbytes"],
                "launch_host_us": plain["time_us"],
                "launch_device_us": plain["device_time_us"],
                "graph_host_us": graphed["time_us"],
                "graph_device_us": graphed["device_time_us"],
            }
        )
        print(
            f"{plain['nbytes']:>8}  {plain['time_us']:13.2f} {plain['device_time_us']:8.2f} {gap_plain:+9.2f}   "
            f"{graphed['time_us']:12.2f} {graphed['device_time_us']:8.2f} {gap_graph:+9.2f}  "
            f"{'meets' if gap_graph <= 2 else 'MISSES'}"
        )
    if args.summary:
        args.summary.write_text(
            json.dumps({"copy_GBps": copy, "allreduce_1GiB": big, "ratio": ratio, "small": small}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
