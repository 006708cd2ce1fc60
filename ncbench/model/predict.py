"""Predict collective times at scale, with a band from the fit's uncertainty.

(fitted) Topology x ops x GPU counts x sizes x algorithms -> predictions DataFrame; plus what else grows with
scale: communicator initialisation time and the expected time between failures of an N-GPU job.
"""

from dataclasses import dataclass

import numpy as np

from .. import ops as ops_mod
from ..errors import EXIT_DATAERR, NcbenchError
from . import calibrate
from . import cost as alg
from . import topology as topo_mod
from .topology import Topology

DEFAULT_GPUS = (200_000, 400_000, 600_000, 800_000, 1_000_000)
DEFAULT_BYTES = tuple(1 << e for e in range(3, 35))  # 8 B .. 16 GiB
SAMPLES = 200  # parameter draws per prediction band
# Percentiles of the band: an 80 % interval, the coverage it is calibrated to on published curves held out of the
# fit (scripts/extrapolate.py; docs/cost-model.md, "Calibrated bands").
BAND = (10.0, 90.0)
BAND_PERCENT = BAND[1] - BAND[0]
# Without a fit, every parameter is a spec-sheet or NCCL constant: library-level latency is 5-10x the wire's
# (docs/cost-model.md, "Constants"), so the prior spread is wide (log-normal sd).
NOMINAL_LOG_SD = 0.25
COLUMNS = [
    "topology", "op", "algorithm", "protocol", "gpus", "bytes", "time_us", "time_us_low", "time_us_high",
    "algbw_GBps", "busbw_GBps", "busbw_GBps_low", "busbw_GBps_high", "tiers", "tiers_added", "fitted", "band",
]  # fmt: skip
# Where a row's band comes from (docs/cost-model.md, "Calibrated bands"):
BAND_NOMINAL = "nominal"  # a design with no fit: every parameter's prior spread (NOMINAL_LOG_SD)
BAND_FIT = "fit"  # the fit's parameter covariance and residual
BAND_FIT_DISCREPANCY = "fit+discrepancy"  # ... and the model's out-of-sample error beyond the fitted scales
BAND_SCALE = "published"  # init and MTBF rows: the spread of the published figures they come from
NEEDED = ("topology", "op", "algorithm", "gpus", "bytes", "time_us", "time_us_low", "time_us_high", "busbw_GBps")


@dataclass(frozen=True)
class Draws:
    """Parameter vectors drawn from the fit's uncertainty [S, 1+3L], and the model's own relative error."""

    theta: np.ndarray
    model_log_sd: float
    per_doubling_log_sd: float = 0.0  # extra model error per doubling beyond the fitted scales
    max_gpus: float = float("inf")
    per_doubling_scales: int = 0  # forward-chained predictions the fit's per-doubling error rests on


def draws(topology: Topology, *, samples: int = SAMPLES, seed: int = 0, calibrated: bool = False) -> Draws:
    """Return parameter draws: the fit's log-normal covariance, or NOMINAL_LOG_SD on every parameter.

    `calibrated`: the band also carries the measured out-of-sample error of fitting and predicting (calibrate),
    which already holds what fitting noise does to the fitted parameters: they stay at their fitted values,
    and only the parameters the data left unconstrained keep their prior spread.
    """
    rng = np.random.default_rng(seed)
    center = alg.nominal(topology).vector()
    log_sd = np.full(center.size, NOMINAL_LOG_SD)
    fit = topology.fit
    noise = rng.standard_normal((samples, center.size))
    if fit and fit.parameters and fit.log_covariance:
        names = alg.parameter_names(topology)
        index = [names.index(n) for n in fit.parameters if n in names]
        cov = np.asarray(fit.log_covariance, dtype=float)[: len(index), : len(index)]
        chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(index)))
        correlated = noise[:, : len(index)] @ chol.T
        log_sd[index] = 0.0
        noise = noise * log_sd
        noise[:, index] += 0.0 if calibrated else correlated
    else:
        noise = noise * log_sd
    noise[0] = 0.0  # draw 0 is the central estimate
    if not fit:
        return Draws(center * np.exp(noise), 0.0)
    return Draws(
        center * np.exp(noise),
        fit.residual_log_sd,
        fit.extrapolation_log_sd_per_doubling,
        fit.max_gpus,
        fit.extrapolation_scales,
    )


def _extend_draws(theta: np.ndarray, base_tiers: int, tiers: int) -> np.ndarray:
    """Give tiers that `extended` added the draws of the outermost fitted tier (latency plus its step)."""
    if tiers == base_tiers:
        return theta
    alpha = theta[:, 1 : 1 + base_tiers]
    inv = theta[:, 1 + base_tiers : 1 + 2 * base_tiers]
    red = theta[:, 1 + 2 * base_tiers :]
    step = alpha[:, -1:] - alpha[:, -2:-1] if base_tiers > 2 else np.zeros((theta.shape[0], 1))
    extra = np.arange(1, tiers - base_tiers + 1)[None, :]
    alpha = np.hstack([alpha, alpha[:, -1:] + np.maximum(step, 0) * extra])
    inv = np.hstack([inv, np.repeat(inv[:, -1:], tiers - base_tiers, axis=1)])
    red = np.hstack([red, np.repeat(red[:, -1:], tiers - base_tiers, axis=1)])
    return np.hstack([theta[:, :1], alpha, inv, red])


def _stragglers(times: np.ndarray, terms: alg.Terms, theta, topology: Topology, p: np.ndarray) -> np.ndarray:
    """Add the wait for the latest rank (jitter) and the slowest link (degraded links) of a synchronous op."""
    jitter = topology.jitter_us * np.sqrt(2 * np.log(np.maximum(p, 1)))  # E[max of p] ~ mu + sd sqrt(2 ln p)
    f, speed = topology.degraded_link_fraction, topology.degraded_link_speed
    if f > 0 and speed < 1:
        hit = 1 - (1 - f) ** p  # chance the communicator's links include a degraded one
        slow = 1 + hit * (1 / speed - 1)
        latency_only = alg.evaluate_draws(terms, theta, np.zeros(1))
        times = latency_only + (times - latency_only) * slow[None, :, None]
    return times + jitter[None, :, None]


def predict(
    topology: Topology,
    *,
    ops=alg.OPS,
    gpus=DEFAULT_GPUS,
    nbytes=DEFAULT_BYTES,
    algorithms=("auto",),
    samples: int = SAMPLES,
    discrepancy="shipped",
):
    """Return one row per (op, algorithm, GPU count, size): time with its band, algbw, busbw.

    A fitted topology's band also carries the model's own out-of-sample error beyond its fitted scales
    (`discrepancy`: the shipped calibrate table, a calibrate.Discrepancy, or None for the fit's noise alone);
    the `band` column says which it is.
    """
    import pandas as pd

    gpus = np.asarray(sorted({int(x) for x in gpus}), dtype=float)
    nbytes = np.asarray(sorted({int(x) for x in nbytes}), dtype=float)
    if gpus.size == 0 or nbytes.size == 0 or gpus.min() < 1 or nbytes.min() < 0:
        raise NcbenchError("predict needs GPU counts >= 1 and sizes >= 0")
    base_tiers = len(topology.tiers)
    grown, _ = topo_mod.extended(topology, int(gpus.max()))
    tiers = len(grown.tiers)
    known = _discrepancy(topology, discrepancy)
    drawn = draws(topology, samples=samples, calibrated=known is not None)
    theta = _extend_draws(drawn.theta, base_tiers, tiers)
    tuner = _extend_draws(alg.tuner(topology)[None, :], base_tiers, tiers)
    shape = alg.shape(grown, gpus)
    z = np.random.default_rng(1).standard_normal((theta.shape[0], 1, 1)) * _model_log_sd(drawn, known, gpus, nbytes)
    z[0] = 0.0  # draw 0 stays the central estimate
    frames = []
    for op in ops:
        if op not in alg.OPS:
            raise NcbenchError(f"unknown op {op!r}; choose from {', '.join(alg.OPS)}")
        frames.append(_predict_op(grown, op, shape, (theta, tuner), nbytes, algorithms, z))
    frame = pd.concat(frames, ignore_index=True)
    used = frame["gpus"].to_numpy()
    frame["tiers"] = shape.top[np.searchsorted(gpus, used)] + 1
    frame["tiers_added"] = np.maximum(frame["tiers"] - base_tiers, 0)
    frame["fitted"] = bool(topology.fit)
    frame["band"] = BAND_FIT_DISCREPANCY if known else BAND_FIT if topology.fit else BAND_NOMINAL
    return _with_busbw_band(frame)[COLUMNS]


def _discrepancy(topology: Topology, discrepancy):
    """Return the Discrepancy a prediction of this topology carries: None for a nominal design or when asked."""
    if not topology.fit or discrepancy is None:
        return None
    return calibrate.load() if discrepancy == "shipped" else discrepancy


def _model_log_sd(drawn: Draws, known, gpus, nbytes) -> np.ndarray:
    """Return the model's log-error sd [1, P, N]: the fit's residual, or the walk beyond its scales if larger.

    The walk's variance per doubling is measured on raw out-of-sample errors, which already hold the misfit of
    the fits they came from, so the residual is its floor, not a term added to it. Per doubling, the fit's own
    forward-chained error and the calibrated out-of-sample one are two estimates of one variance: they are
    pooled, each weighted by the predictions it rests on (a fit at four scales has two; the shipped table a
    dozen or more), so a noisy estimate from a few points does not set the band.
    """
    doublings = np.maximum(np.log2(gpus / drawn.max_gpus), 0.0) if np.isfinite(drawn.max_gpus) else 0 * gpus
    own = drawn.per_doubling_log_sd * np.ones(nbytes.size)
    if known:
        weight = known.evidence(nbytes).astype(float)
        outside = known.log_sd(nbytes, np.ones(1))[0]
        own = np.sqrt((drawn.per_doubling_scales * own**2 + weight * outside**2) / (drawn.per_doubling_scales + weight))
    spread = own[None, :] * np.sqrt(doublings)[:, None]
    return np.sqrt(np.maximum(drawn.model_log_sd**2, spread**2))[None, :, :]


def _with_busbw_band(frame):
    """Add the busbw band: the time band turned over (the fastest time is the highest bandwidth)."""
    time_us = frame["time_us"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["busbw_GBps_low"] = frame["busbw_GBps"] * time_us / frame["time_us_high"]
        frame["busbw_GBps_high"] = frame["busbw_GBps"] * time_us / frame["time_us_low"]
    return frame


def sweep(designs, *, ops=alg.OPS, gpus=DEFAULT_GPUS, nbytes=DEFAULT_BYTES, algorithms=("auto",), scale=True):
    """Return the predictions of every design: collectives (`predict`), then init and MTBF rows when `scale`.

    The one sweep behind `ncbench predict` and the report's predictions, so what each shows is the same.
    """
    import pandas as pd

    frames = []
    for design in designs:
        frames.append(predict(design, ops=ops, gpus=gpus, nbytes=nbytes, algorithms=algorithms))
        if scale:
            frames.append(scale_costs(design, gpus))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def load(path):
    """Read a predictions CSV (`ncbench predict --format csv`); one sentence (65) when it is not one.

    Files written before the busbw band existed get it from their time band.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise NcbenchError(f"{path}: not a predictions CSV ({err})", EXIT_DATAERR) from None
    missing = set(NEEDED) - set(frame.columns)
    if missing:
        raise NcbenchError(
            f"{path}: not an ncbench predictions CSV; missing {', '.join(sorted(missing))}", EXIT_DATAERR
        )
    return frame if "busbw_GBps_low" in frame else _with_busbw_band(frame)


def _candidates(op: str, algorithms) -> list[str]:
    known = set(alg.ALGORITHMS) | {"auto", "all"}
    unknown = [a for a in algorithms if a not in known]
    if unknown:
        raise NcbenchError(
            f"unknown algorithm {unknown[0]!r}; choose auto, all or from {', '.join(sorted(known - {'auto', 'all'}))}"
        )
    names = []
    for a in algorithms:
        if a == "auto":
            names += [x for x in alg.for_op(op) if alg.ALGORITHMS[x].auto]
        elif a == "all":
            names += list(alg.for_op(op))
        elif a in alg.for_op(op):
            names.append(a)
    return list(dict.fromkeys(names))


def _predict_op(topology, op, shape, priced, nbytes, algorithms, z):
    import pandas as pd

    theta, tuner = priced  # the draws the hardware pays, and the one vector the tuner chooses with
    want_auto = "auto" in algorithms
    names = _candidates(op, algorithms)
    if not names:
        known = ", ".join(alg.for_op(op))
        raise NcbenchError(f"{op} has none of the algorithms {', '.join(algorithms)}; it knows {known} (or auto, all)")
    results = {}  # (algorithm, protocol) -> (times [S,P,N], enabled [P])
    for name in names:
        terms = alg.cost(op, name, shape)
        ok = alg.enabled(op, name, shape)
        for proto, protocol in alg.PROTOCOLS.items():
            if proto not in topology.protocols or proto not in terms.protocols:
                continue  # NCCL does not enable it on this fabric's paths, or never runs the algorithm with it
            t = alg.with_protocol(terms, protocol)
            times = _stragglers(alg.evaluate_draws(t, theta, nbytes), t, theta, topology, shape.p)
            results[(name, proto)] = (times * np.exp(z), ok, alg.evaluate_draws(alg.as_tuned(t), tuner, nbytes)[0])
    rows = []
    explicit = [a for a in algorithms if a != "auto"]
    for name in names if explicit else []:
        if "all" not in explicit and name not in explicit:
            continue
        rows.append(_best(op, {k: v for k, v in results.items() if k[0] == name}, shape, nbytes, name))
    if want_auto:
        auto = {k: v for k, v in results.items() if alg.ALGORITHMS[k[0]].auto}
        rows.append(_best(op, auto, shape, nbytes, "auto"))
    frame = pd.concat(rows, ignore_index=True)
    frame.insert(0, "topology", topology.name)
    return frame


def _best(op, results, shape, nbytes, label):
    """Pick, per (GPU count, size), the enabled (algorithm, protocol) fastest at the tuner's values."""
    import pandas as pd

    keys = list(results)
    tuned = np.stack([results[k][2] for k in keys])  # [K, P, N]
    allowed = np.stack([results[k][1] for k in keys])
    tuned = np.where(allowed[:, :, None], tuned, np.inf)
    choice = tuned.argmin(axis=0)  # [P, N]
    stacked = np.stack([results[k][0] for k in keys])  # [K, S, P, N]
    pi, ni = np.meshgrid(np.arange(shape.p.size), np.arange(nbytes.size), indexing="ij")
    chosen = stacked[choice, :, pi, ni]  # [P, N, S]
    impossible = ~allowed.any(axis=0)  # e.g. collnet on a fabric without SHARP: NaN, not a number it cannot reach
    chosen = np.where(impossible[:, None, None], np.nan, chosen)
    time_us = chosen[:, :, 0]
    low, high = np.percentile(np.nan_to_num(chosen, nan=0.0), BAND, axis=2)  # no all-NaN slices: no warning
    low, high = np.where(impossible[:, None], np.nan, low), np.where(impossible[:, None], np.nan, high)
    # A pipelined algorithm runs at its slowest phase: the max of perturbed phases sits above the max of
    # the central ones, so the band is widened to always contain the central estimate it is printed with.
    low, high = np.fmin(low, time_us), np.fmax(high, time_us)
    p = np.broadcast_to(shape.p[:, None], time_us.shape)
    n = np.broadcast_to(nbytes[None, :], time_us.shape)
    algbw = np.where(time_us > 0, n / (time_us * 1e3), np.nan)
    return pd.DataFrame(
        {
            "op": op,
            "algorithm": [keys[c][0] for c in choice.ravel()],
            "protocol": [keys[c][1] for c in choice.ravel()],
            "gpus": p.ravel().astype(np.int64),
            "bytes": n.ravel().astype(np.int64),
            "time_us": time_us.ravel(),
            "time_us_low": low.ravel(),
            "time_us_high": high.ravel(),
            "algbw_GBps": algbw.ravel(),
            "busbw_GBps": (algbw * ops_mod.OPS[op].busbw_factor(p)).ravel(),
            "requested": label,
        }
    )


# --------------------------------------------------------------------------------- what else grows with scale


INIT_EXPONENT_PRIOR = (1.0, 0.5)  # linear (ring bootstrap all-gather, root accepting each rank) +- 0.5: 0 to 2 at 2 sd
INIT_NOISE_LOG_SD = 0.15  # published init times are rounded readings ("~100 s")


def fit_init(gpus, time_s, *, samples: int = SAMPLES, seed: int = 0) -> dict:
    """Fit time_s = coefficient_s * (gpus/1000)**exponent in log space, with a prior on the exponent.

    Stock NCCL initialisation grows at least linearly (bootstrap ring all-gather, the root accepting every
    rank; docs/cost-model.md, "Predictions"); the prior says so and the data say by how much more. Bootstrap spread.
    """
    x = np.log(np.asarray(gpus, dtype=float) / 1000)
    y = np.log(np.asarray(time_s, dtype=float))
    if x.size < 2 or np.ptp(x) == 0:
        raise NcbenchError("an init-time fit needs at least two different GPU counts")

    def solve(xs, ys):
        mean, sd = INIT_EXPONENT_PRIOR
        a = np.vstack([np.column_stack([np.ones_like(xs), xs]) / INIT_NOISE_LOG_SD, [0.0, 1.0 / sd]])
        b = np.concatenate([ys / INIT_NOISE_LOG_SD, [mean / sd]])
        return np.linalg.lstsq(a, b, rcond=None)[0]

    intercept, slope = solve(x, y)
    rng = np.random.default_rng(seed)
    boot = np.array([solve(x[pick], y[pick]) for pick in rng.integers(0, x.size, (samples, x.size))])
    resid = y - (slope * x + intercept)
    return {
        "coefficient_s": float(np.exp(intercept)),
        "exponent": float(slope),
        "log_coefficient_sd": float(np.std(boot[:, 0])),
        "exponent_sd": float(np.std(boot[:, 1])),
        "correlation": float(np.corrcoef(boot[:, 0], boot[:, 1])[0, 1]),
        "residual_log_sd": float(max(np.sqrt(np.mean(resid**2)), INIT_NOISE_LOG_SD)),
        "points": int(x.size),
    }


def init_times(init: dict, gpus, *, samples: int = SAMPLES, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Return (time_s, low, high) of communicator initialisation at each GPU count."""
    gpus = np.asarray(gpus, dtype=float)
    x = np.log(gpus / 1000)
    center = init["coefficient_s"] * np.exp(init["exponent"] * x)
    sd_c, sd_e = init.get("log_coefficient_sd", 0.0), init.get("exponent_sd", 0.0)
    rho = init.get("correlation", 0.0)
    rng = np.random.default_rng(seed)
    z1, z2 = rng.standard_normal((2, samples))
    d_log_c = sd_c * z1
    d_exp = sd_e * (rho * z1 + np.sqrt(max(1 - rho**2, 0.0)) * z2)
    model = init.get("residual_log_sd", 0.0) * rng.standard_normal(samples)
    logs = np.log(center)[None, :] + d_log_c[:, None] + d_exp[:, None] * x[None, :] + model[:, None]
    low, high = np.percentile(np.exp(logs), BAND, axis=0)
    return center, low, high


def scale_costs(topology: Topology, gpus=DEFAULT_GPUS):
    """Return init time and mean time between failures of one job spanning each GPU count (prediction rows)."""
    import pandas as pd

    gpus = np.asarray(sorted({int(x) for x in gpus}), dtype=float)
    rows = []
    if topology.init:
        center, low, high = init_times(dict(topology.init), gpus)
        for i, p in enumerate(gpus):
            rows.append(
                {
                    "op": "init",
                    "algorithm": "stock-nccl",
                    "gpus": int(p),
                    "time_us": center[i] * 1e6,
                    "time_us_low": low[i] * 1e6,
                    "time_us_high": high[i] * 1e6,
                }
            )
    if topology.failures:
        fast = float(topology.failures["per_gpu_per_day"])
        slow = float(topology.failures.get("per_gpu_per_day_low", fast))
        middle = np.sqrt(fast * slow)  # the two published rates bound it; their geometric mean is the estimate
        for p in gpus:
            rows.append(
                {
                    "op": "mtbf",
                    "algorithm": "failures",
                    "gpus": int(p),
                    "time_us": 86400e6 / (p * middle),
                    "time_us_low": 86400e6 / (p * fast),
                    "time_us_high": 86400e6 / (p * slow),
                }
            )
    frame = pd.DataFrame(rows, columns=["op", "algorithm", "gpus", "time_us", "time_us_low", "time_us_high"])
    frame.insert(0, "topology", topology.name)
    frame["protocol"], frame["bytes"] = "", 0
    frame["fitted"] = False  # init and failures come from the design's own published tables, never from `ncbench fit`
    frame["band"] = BAND_SCALE
    return frame.reindex(columns=COLUMNS)


def render(frame, fmt: str) -> str:
    """Return predictions as an aligned table, CSV, or a JSON list of objects (missing as null).

    Integer columns become pandas' nullable Int64, since the init and mtbf rows have no tiers: a missing value there
    is pandas.NA, which the table prints as '-', CSV as an empty cell and JSON as null.
    """
    from ..records import json_text

    frame = frame.astype({c: "Int64" for c in ("gpus", "bytes", "tiers", "tiers_added") if c in frame})
    if fmt == "csv":
        return frame.to_csv(index=False, float_format="%.6g")
    if fmt == "json":
        return json_text(frame.to_dict(orient="records"), indent=1) + "\n"
    lines = [
        (
            f"{'topology':<28} {'op':<13} {'algorithm':<18} {'proto':<6} {'gpus':>9} {'bytes':>12} "
            f"{'time_us':>12} {'[low':>12} {'high]':>12} {'algbw_GBps':>11} {'busbw_GBps':>11} tiers"
        )
    ]
    for row in frame.itertuples(index=False):
        d = row._asdict()
        lines.append(
            f"{d['topology']:<28} {d['op']:<13} {_text(d.get('algorithm')):<18} {_text(d.get('protocol')):<6} "
            f"{_num(d['gpus'], 'd'):>9} {_num(d.get('bytes'), 'd'):>12} {_num(d['time_us']):>12} "
            f"{_num(d['time_us_low']):>12} {_num(d['time_us_high']):>12} {_num(d.get('algbw_GBps')):>11} "
            f"{_num(d.get('busbw_GBps')):>11} {_num(d.get('tiers'), 'd')}"
        )
    return "\n".join(lines) + "\n"


MISSING = "-"  # the table's mark for a value a row does not have (or cannot reach: an infinite time)


def _missing(value) -> bool:
    """True for None, NaN, pandas' NA and NaT, and infinities: whatever a cell holds when it holds no number."""
    import pandas as pd

    return value is None or bool(pd.isna(value)) or (isinstance(value, float) and not np.isfinite(value))


def _num(value, kind: str = "g") -> str:
    if _missing(value):
        return MISSING
    return f"{int(value)}" if kind == "d" else f"{value:.4g}"


def _text(value) -> str:
    return "" if _missing(value) else str(value)
