#!/usr/bin/env python3
"""Fit the smallest scales of each published scaling curve, predict the largest, print every error.

Published numbers are compared with, never fitted into, the predictions they judge: for each curve
(same source, system, collective, algorithm, size and metric at three or more GPU counts) the smaller
half of the points is fitted the way a user would fit their own measurements (`ncbench fit` on a generic
two-tier topology: the scale-up domain from the curve, one network tier), and the rest is predicted.

    .venv/bin/python scripts/extrapolate.py [PUBLISHED.csv]

Targets (issue 4): median absolute error <= 15 %, the band covers the published value in >= 80 % of cases.
"""

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ncbench import ops
from ncbench.model import cost as alg
from ncbench.model import fit as fit_mod
from ncbench.model import predict as pred
from ncbench.model import topology as topo_mod

DEFAULT = [ROOT.parent / "shared" / "data" / "published.csv", ROOT / "results" / "published" / "published.csv"]
KEYS = ["source", "system", "gpu", "gpus_per_node", "collective", "algorithm", "message_bytes", "metric"]
METRICS = {"busbw_GBps", "algbw_GBps", "latency_us", "time_us", "time_s"}

# A generic fabric: the curve's scale-up domain and one network tier. These are priors the fit moves
# (NCCL's per-step constants, a 100 Gb/s NIC); nothing here is tuned to a published curve.
GENERIC = {
    "name": "generic",
    "description": "scale-up domain + one network tier",
    "base_latency_us": 8.4,
    "rail_optimized": False,
    "sources": {"base_latency_us": "NCCL baseLatencies Ring/Simple"},
    "tier": [
        {
            "name": "scale-up",
            "size": 8,
            "bandwidth_GBps": 100.0,
            "latency_us": 3.4,
            "sources": {
                "size": "the curve's gpus_per_node",
                "bandwidth_GBps": "prior",
                "latency_us": "NCCL NVLINK Simple",
            },
        },
        {
            "name": "network",
            "size": 10**8,
            "bandwidth_GBps": 12.5,
            "latency_us": 14.0,
            "sources": {
                "size": "one flat network tier",
                "bandwidth_GBps": "prior: 100 Gb/s",
                "latency_us": "NCCL NET Simple",
            },
        },
    ],
}


def number(text) -> float:
    match = re.fullmatch(r"\s*~?\s*([0-9.]+(?:e[+-]?\d+)?)\s*", str(text))
    return float(match.group(1)) if match else float("nan")


def algorithm_of(text: str, op: str) -> str:
    text = str(text).lower()
    for name in ("nvlstree", "nvls", "collnet", "pat", "tree", "ring"):
        if name in text and op in alg.OPS and name in alg.for_op(op):
            return name
    return alg.for_op(op)[0] if op in alg.OPS else "ring"


def curves(frame: pd.DataFrame):
    frame = frame.assign(
        value_num=frame["value"].map(number),
        gpus=frame["total_gpus"].map(number),
        per_node=frame["gpus_per_node"].map(number),
    )
    frame = frame[frame["metric"].isin(METRICS) & frame["value_num"].notna() & frame["gpus"].notna()]
    for key, curve in frame.groupby(KEYS, dropna=False, sort=False):
        curve = curve.sort_values("gpus")
        if curve["gpus"].nunique() >= 3:
            yield dict(zip(KEYS, key, strict=True)), curve


def split(curve: pd.DataFrame):
    n_fit = max(2, len(curve) // 2)
    return curve.iloc[:n_fit], curve.iloc[n_fit:]


def op_of(collective: str) -> str | None:
    text = collective.lower().replace("-", "").replace(" ", "")
    for op in alg.OPS:
        if text.startswith(op):
            return op
    return "init" if "init" in text else None


def to_time_us(metric: str, value, op: str, p, nbytes):
    factor = ops.OPS[op].busbw_factor(np.asarray(p, dtype=float)) if metric == "busbw_GBps" else 1.0
    if metric in ("busbw_GBps", "algbw_GBps"):
        return nbytes * factor / (np.asarray(value) * 1e3)
    return np.asarray(value) * (1e6 if metric == "time_s" else 1.0)


def from_time_us(metric: str, time_us, op: str, p, nbytes):
    return (
        to_time_us(metric, time_us, op, p, nbytes)
        if metric in ("busbw_GBps", "algbw_GBps")
        else (np.asarray(time_us) / (1e6 if metric == "time_s" else 1.0))
    )


def predict_collective(info, op, train, test):
    g = int(train["per_node"].iloc[0]) if np.isfinite(train["per_node"].iloc[0]) else 8
    spec = {**GENERIC, "tier": [dict(GENERIC["tier"][0], size=g), GENERIC["tier"][1]]}
    topology = topo_mod.from_dict(spec, "generic")
    nbytes = number(info["message_bytes"])
    algorithm = algorithm_of(info["algorithm"], op)
    p = train["gpus"].to_numpy()
    rows = pd.DataFrame(
        {
            "op": op,
            "backend": "nccl",
            "nranks": p,
            "nnodes": np.ceil(p / g),
            "ranks_per_node": g,
            "nbytes": nbytes,
            "time_us": to_time_us(info["metric"], train["value_num"].to_numpy(), op, p, nbytes),
            "wrong": 0,
        }
    )
    fitted = fit_mod.fit(rows, topology, algorithm=algorithm).topology
    out = pred.predict(fitted, ops=(op,), gpus=test["gpus"], nbytes=[nbytes], algorithms=(algorithm,))
    out = out.set_index("gpus").loc[test["gpus"].astype(int)]
    q = test["gpus"].to_numpy()
    center = from_time_us(info["metric"], out["time_us"].to_numpy(), op, q, nbytes)
    a = from_time_us(info["metric"], out["time_us_low"].to_numpy(), op, q, nbytes)
    b = from_time_us(info["metric"], out["time_us_high"].to_numpy(), op, q, nbytes)
    return center, np.minimum(a, b), np.maximum(a, b), algorithm


def predict_init(info, train, test):
    params = pred.fit_init(train["gpus"], to_time_us(info["metric"], train["value_num"], "allreduce", 0, 0) / 1e6)
    center, low, high = pred.init_times(params, test["gpus"])
    return center, low, high, "power law"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else next(p for p in DEFAULT if p.exists())
    published = pd.read_csv(path)
    results = []
    print(f"published curves from {path}\n")
    print(f"{'curve':<62} {'gpus':>7} {'published':>10} {'predicted':>10} {'[low':>9} {'high]':>9} {'error':>8}  band")
    for info, curve in curves(published):
        op = op_of(info["collective"])
        if op is None:
            continue
        train, test = split(curve)
        if test.empty:
            continue
        if op == "init":
            center, low, high, how = predict_init(info, train, test)
        else:
            center, low, high, how = predict_collective(info, op, train, test)
        label = f"{info['system'][:24]} {info['collective'][:18]} {how} {info['metric']}"
        fitted_on = ",".join(f"{int(x)}" for x in train["gpus"])
        print(f"{label:<62} fitted on {fitted_on} GPUs")
        for gpus, published_value, c, lo, hi in zip(test["gpus"], test["value_num"], center, low, high, strict=True):
            error = 100 * (c / published_value - 1)
            covered = lo <= published_value <= hi
            results.append((abs(error), covered, hi / lo))
            print(
                f"{'':<62} {int(gpus):>7} {published_value:>10.4g} {c:>10.4g} {lo:>9.4g} {hi:>9.4g} "
                f"{error:>+7.1f}%  {'covers' if covered else 'MISSES'}"
            )
    if not results:
        print("no scaling curves (3+ GPU counts of one metric) found")
        return 1
    errors = np.array([r[0] for r in results])
    coverage = np.mean([r[1] for r in results])
    width = np.median([r[2] for r in results])
    print(
        f"\n{len(results)} predictions: median |error| {np.median(errors):.1f} % (target <= 15 %), "
        f"band covers {100 * coverage:.0f} % (target >= 80 %); median band high/low = {width:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
