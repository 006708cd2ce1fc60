"""Compare two runs size by size, and say which changes are significant given their samples (pyperf compare_to).

results A (a run, or a baseline copy of one) + results B -> rows joined on what was measured -> change in
time and busbw, Welch's t-test on the recorded per-sample mean, sd and count -> table; a significant
slowdown beyond the threshold is a regression (exit 2).
"""

import math

import numpy as np

from .errors import EXIT_DATAERR, NcbenchError

# `timing` names the statistic too: ncbench's slowest rank, nccl-tests' or OSU's average over ranks, IMB's t_avg
KEYS = ["op", "backend", "dtype", "redop", "root", "in_place", "nranks", "nbytes", "peer_a", "peer_b", "timing"]
COLUMNS = [
    "op",
    "backend",
    "dtype",
    "in_place",
    "nranks",
    "nbytes",
    "time_us_a",
    "time_us_b",
    "change_pct",
    "busbw_GBps_a",
    "busbw_GBps_b",
    "t",
    "p",
    "verdict",
]


def _pooled(frame):
    """Return one row per measured thing: repeated cycles (-N) pooled into one mean, sd and count."""
    frame = frame.assign(_var=frame["time_us_std"].astype(float) ** 2, _w=frame["samples"].astype(float))
    grouped = frame.groupby(KEYS, dropna=False)
    out = grouped.agg(
        time_us=("time_us", "mean"), busbw_GBps=("busbw_GBps", "mean"), samples=("samples", "sum"), var=("_var", "mean")
    )
    out["sd"] = np.sqrt(out.pop("var"))
    return out


def welch_p(mean_a, sd_a, n_a, mean_b, sd_b, n_b) -> tuple[float, float]:
    """Return (t, two-sided p) of Welch's t-test from summary statistics."""
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    if va + vb == 0:
        return (math.inf if mean_a != mean_b else 0.0), (0.0 if mean_a != mean_b else 1.0)
    t = (mean_b - mean_a) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / ((va**2 / (n_a - 1) if n_a > 1 else 0) + (vb**2 / (n_b - 1) if n_b > 1 else 0) or 1e-300)
    return t, _betainc(df / 2, 0.5, df / (df + t * t))


def _betainc(a: float, b: float, x: float) -> float:
    """Return the regularised incomplete beta I_x(a, b) (Numerical Recipes, section 6.4)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300

    def guard(v):
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1))
    h = d
    for m in range(1, 300):
        for aa in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 / guard(1.0 + aa * d)
            c = guard(1.0 + aa / c)
            h *= d * c
        if abs(d * c - 1.0) < 3e-14:
            break
    return h


def compare(a, b, *, threshold_pct: float = 5.0, alpha: float = 0.05):
    """Return the joined rows with change and significance; verdict regression | slower | faster | same."""
    joined = _pooled(a).merge(_pooled(b), how="inner", left_index=True, right_index=True, suffixes=("_a", "_b"))
    joined = joined.reset_index()
    if joined.empty:
        _refuse_other_statistics(a, b)
        raise NcbenchError(
            "the two results share no measurement (same op, backend, dtype, ranks and size); they measured different "
            "things, so there is nothing to compare",
            EXIT_DATAERR,
        )
    tp = [
        welch_p(r.time_us_a, r.sd_a, max(r.samples_a, 1), r.time_us_b, r.sd_b, max(r.samples_b, 1))
        for r in joined.itertuples()
    ]
    joined["t"] = [x[0] for x in tp]
    joined["p"] = [x[1] for x in tp]
    joined["change_pct"] = 100 * (joined["time_us_b"] / joined["time_us_a"] - 1)
    significant = joined["p"] < alpha
    joined["verdict"] = np.select(
        [
            significant & (joined["change_pct"] > threshold_pct),
            significant & (joined["change_pct"] > 0),
            significant & (joined["change_pct"] < 0),
        ],
        ["regression", "slower", "faster"],
        "same",
    )
    return joined[COLUMNS].sort_values(["op", "backend", "dtype", "in_place", "nranks", "nbytes"], ignore_index=True)


def _refuse_other_statistics(a, b) -> None:
    """Raise one sentence when A and B measured the same things but report different statistics of them."""
    same = [k for k in KEYS if k != "timing"]
    both = a[same + ["timing"]].merge(b[same + ["timing"]], on=same, suffixes=("_a", "_b"))
    if not both.empty:
        first = both.iloc[0]
        raise NcbenchError(
            f"the two results measured the same things but report different statistics of them (A: "
            f"{first['timing_a']!r}; B: {first['timing_b']!r}): ncbench's time is the slowest rank's, OSU's and "
            "nccl-tests' an average over ranks, IMB's t_avg; they are not compared",
            EXIT_DATAERR,
        )


def render(frame, fmt: str, *, label_a: str, label_b: str, threshold_pct: float, alpha: float) -> str:
    """Return the comparison as a table (pyperf-style summary last), CSV or JSON lines."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        from .records import json_lines

        return json_lines(frame.to_dict(orient="records"))
    from .units import format_size

    lines = [
        f"# A = {label_a}",
        f"# B = {label_b}",
        (
            f"# change = time B / time A - 1; significant when Welch's t-test on the recorded samples gives p < {alpha:g}; "
            f"a regression is significantly slower by more than {threshold_pct:g} %"
        ),
        (
            f"{'op':<14}{'place':<6}{'ranks':>6}{'size':>10}{'time A (us)':>13}{'time B (us)':>13}{'change':>9}"
            f"{'busbw A':>9}{'busbw B':>9}{'p':>9}  verdict"
        ),
    ]
    for r in frame.itertuples():
        lines.append(
            f"{r.op:<14}{'in' if r.in_place else 'out':<6}{r.nranks:>6}{format_size(int(r.nbytes)):>10}"
            f"{r.time_us_a:>13.2f}{r.time_us_b:>13.2f}{r.change_pct:>+8.1f}%{r.busbw_GBps_a:>9.3f}"
            f"{r.busbw_GBps_b:>9.3f}{r.p:>9.2g}  {r.verdict}"
        )
    counts = frame["verdict"].value_counts()
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in ("regression", "slower", "faster", "same"))
    geo = float(np.exp(np.mean(np.log(frame["time_us_b"] / frame["time_us_a"]))))
    lines.append(f"# {len(frame)} measurements: {summary}; geometric mean of time B / A: {geo:.3f}")
    return "\n".join(lines) + "\n"
