"""The model's own extrapolation error, measured out of sample, so a prediction's band says what it does not know.

(log error of each out-of-sample prediction, doublings beyond the fitted scales, size) -> Discrepancy: per regime
(latency-bound, mid-size, bandwidth-bound), the spread of log(measured / model) per doubling of scale beyond the
fit. scripts/extrapolate.py measures it by leaving each published curve out (fit its small scales, predict its
large ones) and writes the shipped table, discrepancy.toml beside this file; `predict` widens a fitted topology's
band by it (docs/cost-model.md, "Calibrated bands").

The error of a model whose form is wrong grows with the distance extrapolated; it is taken as a random walk in
log time: log(measured / model) ~ Normal(0, s_r^2 * d) at d doublings beyond the largest fitted communicator,
so s_r^2 = mean(e^2 / d) over the points of regime r (its maximum-likelihood estimate; a bias counts as error,
since the sign of one curve's bias says nothing of the next).
"""

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EXIT_DATAERR, NcbenchError
from .topology import toml_value

# Regimes by message size: below 1 MiB the per-step latency binds, above 128 MiB the bandwidth does; between
# them (gradient buckets, FSDP all-gathers) both do, and the model's mechanisms there are the least certain.
REGIMES = ("latency", "mid-size", "bandwidth")
MID_FROM_BYTES = 1 << 20
MID_TO_BYTES = 128 << 20
MIN_POINTS = 3  # a regime with fewer out-of-sample points takes the spread of all regimes together
SHIPPED = Path(__file__).with_name("discrepancy.toml")


@dataclass(frozen=True)
class Discrepancy:
    """Per regime: the model's log-error spread per sqrt(doubling) beyond the fit, and the evidence behind it."""

    per_doubling_log_sd: dict = field(default_factory=dict)  # regime -> s_r
    points: dict = field(default_factory=dict)  # regime -> out-of-sample points it rests on (0: pooled)
    curves: int = 0
    source: str = ""

    def log_sd(self, nbytes, doublings) -> np.ndarray:
        """Return the model's log-error sd [P, N] at each doubling count (rows) and size (columns)."""
        per = np.array([self.per_doubling_log_sd.get(r, 0.0) for r in REGIMES])
        spread = per[regime_index(nbytes)]
        return np.sqrt(np.asarray(doublings, dtype=float))[:, None] * spread[None, :]

    def evidence(self, nbytes) -> np.ndarray:
        """Return [N] the out-of-sample points behind each size's spread (a pooled regime: all of them)."""
        counts = np.array([self.points.get(r, 0) for r in REGIMES])
        mine = counts[regime_index(nbytes)]
        return np.where(mine > 0, mine, counts.sum())


def regime_index(nbytes) -> np.ndarray:
    """Return the REGIMES index of each size: 0 below MID_FROM_BYTES, 2 above MID_TO_BYTES, else 1."""
    nbytes = np.asarray(nbytes, dtype=float)
    return np.where(nbytes < MID_FROM_BYTES, 0, np.where(nbytes > MID_TO_BYTES, 2, 1))


def estimate(log_errors, doublings, nbytes, *, curves: int = 0, source: str = "") -> Discrepancy:
    """Return the Discrepancy that out-of-sample errors imply (points at 0 doublings carry no information)."""
    e, d = np.asarray(log_errors, dtype=float), np.asarray(doublings, dtype=float)
    regime = regime_index(nbytes)
    keep = (d > 0) & np.isfinite(e)
    if not keep.any():
        raise NcbenchError("no out-of-sample point beyond its fitted scales: nothing to calibrate the bands with")
    pooled = float(np.sqrt(np.mean(e[keep] ** 2 / d[keep])))
    spread, points = {}, {}
    for i, name in enumerate(REGIMES):
        mine = keep & (regime == i)
        points[name] = int(mine.sum()) if mine.sum() >= MIN_POINTS else 0
        spread[name] = float(np.sqrt(np.mean(e[mine] ** 2 / d[mine]))) if points[name] else pooled
    return Discrepancy(spread, points, curves, source)


def dumps(disc: Discrepancy) -> str:
    """Return the table as TOML (the format `load` reads)."""
    lines = [f"source = {toml_value(disc.source)}", f"curves = {disc.curves}", ""]
    for name in REGIMES:
        lines += [
            f'[regime."{name}"]',
            f"per_doubling_log_sd = {toml_value(float(disc.per_doubling_log_sd.get(name, 0.0)))}",
            f"points = {disc.points.get(name, 0)}  # 0: too few of its own, the spread of all regimes",
            "",
        ]
    return "\n".join(lines)


def load(path: Path | str = SHIPPED) -> Discrepancy:
    """Read a discrepancy table; one sentence (65) naming the file when it is missing a regime or malformed."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
        table = data["regime"]
        spread = {name: float(table[name]["per_doubling_log_sd"]) for name in REGIMES}
        points = {name: int(table[name].get("points", 0)) for name in REGIMES}
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as err:
        raise NcbenchError(
            f"{path}: not a discrepancy table ({err!r}); regenerate it with scripts/extrapolate.py", EXIT_DATAERR
        ) from None
    if not all(math.isfinite(s) and s >= 0 for s in spread.values()):
        raise NcbenchError(f"{path}: per_doubling_log_sd must be finite and >= 0", EXIT_DATAERR)
    return Discrepancy(spread, points, int(data.get("curves", 0)), str(data.get("source", "")))
