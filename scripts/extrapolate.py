#!/usr/bin/env python3
"""Fit the smallest scales of each published scaling curve, predict the largest, print every error.

Published numbers are compared with, never fitted into, the predictions they judge: for each curve
(same source, system, collective, algorithm, size and metric at three or more GPU counts) the smaller
half of the points is fitted the way a user would fit their own measurements (`ncbench fit` on their fabric's
topology: the shipped design of the system where there is one, DESIGNS, else a generic two-tier topology with
the scale-up domain from the curve and one network tier), and the rest is predicted.

    .venv/bin/python scripts/extrapolate.py [PUBLISHED.csv] [--write]

Each collective curve's band is calibrated without it: the model's out-of-sample errors on every other curve
give the discrepancy (ncbench.model.calibrate) its prediction carries, so its coverage is honest. Printed per
regime (latency-bound, mid-size, bandwidth-bound): median and 90th-percentile |error|, band coverage and
median band width (high / low). --write stores the discrepancy of all curves as the shipped table
(ncbench/model/discrepancy.toml), which `ncbench predict` applies to fitted topologies.

Then every curve of a system a shipped design models (DESIGNS), scaling curves and curves over message size
at one scale alike, is predicted by that design as shipped, with no fit (`auto` where the curve names no
algorithm the design runs): what a user gets before measuring anything. The same four figures, apart.
Targets (issue 15): median |error| <= 10 %, p90 <= 25 %, coverage >= 80 %, median band <= 1.6x.
"""

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ncbench import ops
from ncbench.model import calibrate as cal
from ncbench.model import cost as alg
from ncbench.model import fit as fit_mod
from ncbench.model import predict as pred
from ncbench.model import topology as topo_mod

DEFAULT = [ROOT.parent / "shared" / "data" / "published.csv", ROOT / "results" / "published" / "published.csv"]
KEYS = ["source", "system", "gpu", "gpus_per_node", "collective", "algorithm", "message_bytes", "metric"]
SIZE_CURVE_KEYS = [k for k in KEYS if k != "message_bytes"]  # a curve over size shares all of KEYS but the size
METRICS = {"busbw_GBps", "algbw_GBps", "latency_us", "time_us", "time_ms", "time_s"}
TO_US = {"time_s": 1e6, "time_ms": 1e3}  # a time metric in other units than us: the factor to us
# The shipped designs of published systems (topologies/*.toml name their sources): judged as shipped.
DESIGNS = {
    "ORNL Summit (IBM AC922)": "summit-edr",
    "Alibaba HPN (dual-plane, 1K-GPU segment)": "alibaba-hpn-dualplane",
    "OLCF Frontier": "frontier-slingshot",
}

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


ALGORITHM_NAMES = ("nvlstree", "nvls", "collnet", "pat", "tree", "ring")


def algorithm_of(text: str, op: str) -> str:
    text = str(text).lower()
    for name in ALGORITHM_NAMES:
        if name in text and op in alg.OPS and name in alg.for_op(op):
            return name
    return alg.for_op(op)[0] if op in alg.OPS else "ring"


def names_an_algorithm(text: str) -> bool:
    return any(name in str(text).lower() for name in ALGORITHM_NAMES)


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


def designed_curves(frame: pd.DataFrame):
    """Yield (info, curve) for each curve of a DESIGNS system over 3+ GPU counts or 3+ sizes at one count."""
    frame = frame[frame["system"].isin(DESIGNS)].assign(
        value_num=frame["value"].map(number),
        gpus=frame["total_gpus"].map(number),
        nbytes=frame["message_bytes"].map(number),
    )
    frame = frame[frame["metric"].isin(METRICS) & frame["value_num"].notna() & frame["gpus"].notna()]
    for key, curve in frame.groupby(SIZE_CURVE_KEYS, dropna=False, sort=False):
        if curve["nbytes"].isna().any() or len(curve) < 3:
            continue
        if curve["gpus"].nunique() == len(curve) or curve["nbytes"].nunique() == len(curve):
            yield dict(zip(SIZE_CURVE_KEYS, key, strict=True)), curve


def design_of(system: str):
    """Return the shipped topology DESIGNS names for a published system."""
    return topo_mod.load(ROOT / "topologies" / f"{DESIGNS[system]}.toml")


def predict_designed(info, curve):
    """Return (algorithm, central, low, high) of the shipped design at each of the curve's points."""
    op = op_of(info["collective"])
    design = design_of(info["system"])
    # a curve measured with the library's default ("RCCL default") is what its tuner picks: auto
    named = algorithm_of(info["algorithm"], op) if names_an_algorithm(info["algorithm"]) else "auto"
    gpus, nbytes = curve["gpus"].to_numpy(), curve["nbytes"].to_numpy()
    for algorithm in (named, "auto"):
        out = pred.predict(
            design, ops=(op,), gpus=sorted(set(gpus)), nbytes=sorted(set(nbytes)), algorithms=(algorithm,)
        )
        out = out.set_index(["gpus", "bytes"]).loc[list(zip(gpus.astype(int), nbytes.astype(int), strict=True))]
        if out["time_us"].notna().all():
            break
    bands = [from_time_us(info["metric"], out[c].to_numpy(), op, gpus, nbytes) for c in ("time_us_low", "time_us_high")]
    center = from_time_us(info["metric"], out["time_us"].to_numpy(), op, gpus, nbytes)
    return algorithm, center, np.minimum(*bands), np.maximum(*bands)


def judge_designs(published: pd.DataFrame) -> None:
    """Print every curve of a DESIGNS system against its design as shipped, and the four figures per regime."""
    results = []
    print("\nshipped designs as they are (no fit) against the curves of the systems they model\n")
    for info, curve in designed_curves(published):
        algorithm, center, low, high = predict_designed(info, curve)
        regimes = [cal.REGIMES[i] for i in cal.regime_index(curve["nbytes"].to_numpy())]
        results += scored(curve["value_num"], regimes, center, low, high)
        label = f"{DESIGNS[info['system']]} {info['collective'][:18]} {algorithm} {info['metric']}"
        print(f"{label:<62} {len(curve)} points")
        for gpus, size, value, c, lo, hi in zip(
            curve["gpus"], curve["nbytes"], curve["value_num"], center, low, high, strict=True
        ):
            mark = "covers" if lo <= value <= hi else "MISSES"
            print(
                f"{'':<40} {int(gpus):>7} GPUs {int(size):>11} B {value:>8.4g} {c:>8.4g} {lo:>8.4g} {hi:>8.4g}"
                f" {100 * (c / value - 1):>+7.1f}%  {mark}"
            )
    print()
    for regime in cal.REGIMES:
        mine = [r for r in results if r[3] == regime]
        if mine:
            print(f"{regime:>10}: {len(mine):3d} points, {figures(mine)}")
    print(f"\n{len(results)} points of shipped designs: {figures(results)}")


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
    return np.asarray(value) * TO_US.get(metric, 1.0)


def from_time_us(metric: str, time_us, op: str, p, nbytes):
    return (
        to_time_us(metric, time_us, op, p, nbytes)
        if metric in ("busbw_GBps", "algbw_GBps")
        else (np.asarray(time_us) / TO_US.get(metric, 1.0))
    )


def fitted_topology(info, op, train):
    """Fit the curve's smaller scales on its system's design (or the generic fabric), as a user fits their own."""
    g = int(train["per_node"].iloc[0]) if np.isfinite(train["per_node"].iloc[0]) else 8
    if info["system"] in DESIGNS:
        topology = design_of(info["system"])
    else:
        spec = {**GENERIC, "tier": [dict(GENERIC["tier"][0], size=g), GENERIC["tier"][1]]}
        topology = topo_mod.from_dict(spec, "generic")
    nbytes = number(info["message_bytes"])
    algorithm = algorithm_of(info["algorithm"], op)
    p = train["gpus"].to_numpy()
    time_us = to_time_us(info["metric"], train["value_num"].to_numpy(), op, p, nbytes)
    rows = pd.DataFrame(
        {
            "op": op,
            "backend": "nccl",
            "nranks": p,
            "nnodes": np.ceil(p / g),
            "ranks_per_node": g,
            "nbytes": nbytes,
            "time_us": time_us,
            "wrong": 0,
        }
    )
    return fit_mod.fit(rows, topology, algorithm=algorithm).topology, algorithm


def predict_collective(info, op, fitted, algorithm, test, discrepancy):
    """Return (central, low, high) in the curve's metric at the test scales; `discrepancy` as predict takes it."""
    nbytes = number(info["message_bytes"])
    out = pred.predict(
        fitted, ops=(op,), gpus=test["gpus"], nbytes=[nbytes], algorithms=(algorithm,), discrepancy=discrepancy
    )
    out = out.set_index("gpus").loc[test["gpus"].astype(int)]
    q = test["gpus"].to_numpy()
    center = from_time_us(info["metric"], out["time_us"].to_numpy(), op, q, nbytes)
    a = from_time_us(info["metric"], out["time_us_low"].to_numpy(), op, q, nbytes)
    b = from_time_us(info["metric"], out["time_us_high"].to_numpy(), op, q, nbytes)
    return center, np.minimum(a, b), np.maximum(a, b)


def predict_init(info, train, test):
    params = pred.fit_init(train["gpus"], to_time_us(info["metric"], train["value_num"], "allreduce", 0, 0) / 1e6)
    return pred.init_times(params, test["gpus"])


def cases(published: pd.DataFrame) -> list[dict]:
    """Fit every curve's smaller half once; return one case per curve (what is needed to predict the rest)."""
    out = []
    for info, curve in curves(published):
        op = op_of(info["collective"])
        train, test = split(curve)
        if op is None or test.empty:
            continue
        case = {"info": info, "op": op, "train": train, "test": test, "nbytes": number(info["message_bytes"])}
        if op != "init" and not np.isfinite(case["nbytes"]):
            print(f"left out: {info['system']} {info['collective']} ({info['metric']}): its message size is not stated")
            continue
        if op != "init":
            case["fitted"], case["algorithm"] = fitted_topology(info, op, train)
        out.append(case)
    return out


def raw_errors(case) -> np.ndarray:
    """Return log(published / model) at the case's test scales: the model alone, no discrepancy."""
    center, _, _ = predict_collective(case["info"], case["op"], case["fitted"], case["algorithm"], case["test"], None)
    published = case["test"]["value_num"].to_numpy()
    flip = -1 if case["info"]["metric"] in ("busbw_GBps", "algbw_GBps") else 1  # bandwidth: the time's inverse
    return flip * np.log(published / center)


def doublings(case) -> np.ndarray:
    return np.log2(case["test"]["gpus"].to_numpy() / case["train"]["gpus"].max())


def leave_out(collective: list[dict], errors: list[np.ndarray], i: int) -> cal.Discrepancy:
    """Return the discrepancy every other curve implies: the band curve i gets, measured without it."""
    others = [j for j in range(len(collective)) if j != i]
    e = np.concatenate([errors[j] for j in others])
    d = np.concatenate([doublings(collective[j]) for j in others])
    n = np.concatenate([np.full(len(errors[j]), collective[j]["nbytes"]) for j in others])
    return cal.estimate(e, d, n, curves=len(others))


def figures(rows: list[tuple]) -> str:
    """Return median |error|, 90th percentile |error|, band coverage and median band width (high / low)."""
    err = np.array([r[0] for r in rows])
    return (
        f"median |error| {np.median(err):5.1f} %, p90 {np.percentile(err, 90):5.1f} %, band covers "
        f"{100 * np.mean([r[1] for r in rows]):3.0f} %, median band {np.median([r[2] for r in rows]):6.3f}x"
    )


def score(case, center, low, high) -> list[tuple]:
    """Return (|error| %, covered, band width, regime) for each of the case's test scales."""
    regime = "init" if case["op"] == "init" else cal.REGIMES[int(cal.regime_index(case["nbytes"]))]
    return scored(case["test"]["value_num"], [regime] * len(case["test"]), center, low, high)


def scored(values, regimes, center, low, high) -> list[tuple]:
    """Return (|error| %, covered, band width, regime) per published value and its prediction."""
    return [
        (abs(100 * (c / value - 1)), lo <= value <= hi, hi / lo, regime)
        for value, regime, c, lo, hi in zip(values, regimes, center, low, high, strict=True)
    ]


def judge(case, center, low, high, label: str, results: list) -> None:
    """Score the case into `results` and print its lines: every test scale, its band and whether it covers."""
    rows = score(case, center, low, high)
    results += rows
    fitted_on = ",".join(str(int(x)) for x in case["train"]["gpus"])
    print(f"{label:<62} fitted on {fitted_on} GPUs ({rows[0][3]})")
    for gpus, value, c, lo, hi in zip(case["test"]["gpus"], case["test"]["value_num"], center, low, high, strict=True):
        error = 100 * (c / value - 1)
        mark = "covers" if lo <= value <= hi else "MISSES"
        print(f"{'':<62} {int(gpus):>7} {value:>10.4g} {c:>10.4g} {lo:>9.4g} {hi:>9.4g} {error:>+7.1f}%  {mark}")


def main(argv: list[str]) -> int:
    write = "--write" in argv
    argv = [a for a in argv if a != "--write"]
    path = Path(argv[0]) if argv else next(p for p in DEFAULT if p.exists())
    published = pd.read_csv(path)
    every = cases(published)
    collective = [c for c in every if c["op"] != "init"]
    if not every:
        print("no scaling curves (3+ GPU counts of one metric) found")
        return 1
    errors = [raw_errors(c) for c in collective]
    print(f"published curves from {path}; each collective band left-one-curve-out calibrated\n")
    print(f"{'curve':<62} {'gpus':>7} {'published':>10} {'predicted':>10} {'[low':>9} {'high]':>9} {'error':>8}  band")
    results, raw = [], []
    for case in every:
        info = case["info"]
        label = f"{info['system'][:24]} {info['collective'][:18]} {case.get('algorithm', 'power law')} {info['metric']}"
        if case["op"] == "init":
            judge(case, *predict_init(info, case["train"], case["test"]), label, results)
            continue
        i = collective.index(case)
        loo = leave_out(collective, errors, i) if len(collective) > 1 else None
        judge(
            case,
            *predict_collective(info, case["op"], case["fitted"], case["algorithm"], case["test"], loo),
            label,
            results,
        )
        raw += score(case, *predict_collective(info, case["op"], case["fitted"], case["algorithm"], case["test"], None))
    print()
    for regime in (*cal.REGIMES, "init"):
        mine = [r for r in results if r[3] == regime]
        if mine:
            only = [r for r in raw if r[3] == regime]
            fit_band = f"; the fit's band alone covers {100 * np.mean([r[1] for r in only]):.0f} %" if only else ""
            print(f"{regime:>10}: {len(mine):3d} points, {figures(mine)}{fit_band}")
    print(f"\n{len(results)} predictions: {figures(results)}")
    print("targets (issue 15): median |error| <= 10 %, p90 <= 25 %, band covers >= 80 %, median band <= 1.6x")
    if write:
        e = np.concatenate(errors)
        d = np.concatenate([doublings(c) for c in collective])
        n = np.concatenate([np.full(len(errors[j]), c["nbytes"]) for j, c in enumerate(collective)])
        source = f"scripts/extrapolate.py --write on {path.name}: {len(collective)} curves, {len(e)} points"
        cal.SHIPPED.write_text(cal.dumps(cal.estimate(e, d, n, curves=len(collective), source=source)))
        print(f"wrote {cal.SHIPPED.relative_to(ROOT)}")
    judge_designs(published)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
