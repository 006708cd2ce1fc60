"""Is a measurement slow? Against its peers tonight and against the stored baseline; which link is bad?

values of one test class (GB/s, higher is better) + Criteria + baseline p50 -> per-test strikes with
the evidence (peer reference, ratios, robust z); slow and good flows + their links -> blamed links.
The rules, and why: docs/health.md ("Noise", "Strikes, FAIL and WARN").
"""

from dataclasses import dataclass

import numpy as np

MIN_PEERS = 5  # below this many values a median and MAD mean little: compare with the best (ClusterKit)
MAD_FLOOR = 0.01  # of the reference: identical values must not make every tiny dip an infinite z-score
MAD_TO_SD = 1.4826  # MAD of a normal sample times this estimates its standard deviation


@dataclass(frozen=True)
class Criteria:
    """When a test counts as a strike against what it touched."""

    slow_ratio: float = 0.90  # below 90 % of the peer reference (and of the baseline p50, when there is one)
    z_slow: float = 6.0  # and at least 6 robust sd below the peers: 25,000 nodes x 1e-9 false strikes a night
    noise_k: float = 3.0  # and below (1 - noise)^k of it: k spreads down, multiplicatively (its own samples', peers')
    max_noise: float = 0.18  # the cut stops falling there, at 0.55: a strike it alone lets through is WARN at most
    shared_fraction: float = 0.5  # this share of a rail's or leaf's members failing together is a shared cause
    shared_min: int = 3  # ... and at least this many (two bad nodes on one leaf are two bad nodes)

    def check(self) -> None:
        from ..errors import NcbenchError

        if not 0 < self.slow_ratio < 1:
            raise NcbenchError(f"--slow-ratio {self.slow_ratio}: give a fraction of the peer reference, 0 < r < 1")
        if self.z_slow < 0:
            raise NcbenchError(f"--z {self.z_slow}: a robust z threshold is a positive number of sd")
        if not 0 < self.max_noise < 1:
            raise NcbenchError(f"--max-noise {self.max_noise}: give a spread (1 - best/median sample) between 0 and 1")

    def noise_cut(self, noise):
        """Return the share of the reference a value must be below to lie beyond this noise: (1 - noise)^k.

        Spread is multiplicative (a busbw scatters by factors), so k spreads down is a power: for small spreads
        it is 1 - k x noise, and a test 250x slower than its peers stays beyond even a 50 % spread.
        """
        return (1 - np.clip(np.asarray(noise, dtype=float), 0.0, 1.0)) ** self.noise_k

    def ratio(self, noise):
        """Return the strike ratio for a measurement of this spread: the ratio, or lower when noisy."""
        floor = self.noise_cut(self.max_noise)  # past max_noise a strike is WARN only: the cut stops falling
        return np.minimum(self.slow_ratio, np.maximum(self.noise_cut(noise), floor))


@dataclass(frozen=True)
class Reference:
    """What tonight's peers say a test of one class should reach."""

    value: float  # median of the class (the best value when there are fewer than MIN_PEERS)
    sd: float  # robust sd (1.4826 MAD, floored); NaN when there were too few peers for one
    count: int
    baseline_p50: float = float("nan")
    noise: float = 0.0  # the class's typical own spread (median over its tests): how much this machine scatters
    baseline_noise: float = 0.0  # night-to-night scatter of the baseline (1.4826 MAD / p50)


def reference(values: np.ndarray, baseline: dict | None = None, spread=None) -> Reference:
    """Return the peer reference of one class of tests (NaN values, i.e. no answer, are left out).

    `baseline` is the class's stored stats ({p50, mad}); `spread` each test's own scatter.
    """
    answered = np.isfinite(values)
    v = values[answered]
    s = np.asarray(spread, dtype=float)[answered] if spread is not None else np.array([])
    noise = float(np.median(s[np.isfinite(s)])) if np.isfinite(s).any() else 0.0
    p50 = float((baseline or {}).get("p50", float("nan")))
    b_noise = MAD_TO_SD * float((baseline or {}).get("mad", 0.0)) / p50 if np.isfinite(p50) and p50 > 0 else 0.0
    if len(v) == 0:
        return Reference(float("nan"), float("nan"), 0, p50, noise, b_noise)
    if len(v) < MIN_PEERS:
        return Reference(float(v.max()), float("nan"), len(v), p50, noise, b_noise)
    median = float(np.median(v))
    sd = max(MAD_TO_SD * float(np.median(np.abs(v - median))), MAD_FLOOR * median)
    return Reference(median, sd, len(v), p50, noise, b_noise)


def noise_of(ref: Reference, spread=None) -> np.ndarray | float:
    """Return each test's noise: the wider of its own samples' spread and its class's typical spread."""
    if spread is None:
        return ref.noise
    own = np.asarray(spread, dtype=float)
    return np.fmax(np.where(np.isfinite(own), own, 0.0), ref.noise)


def strikes(values: np.ndarray, ref: Reference, criteria: Criteria, spread=None) -> np.ndarray:
    """Return which tests are slow: below the ratio floor and beyond the measurement's spread (its own and
    its peers'), far below the peers, and below the baseline."""
    ratio = criteria.ratio(noise_of(ref, spread))
    with np.errstate(invalid="ignore", divide="ignore"):
        slow = values < ratio * ref.value
        if np.isfinite(ref.sd):
            slow &= (values - ref.value) / ref.sd <= -criteria.z_slow
        if np.isfinite(ref.baseline_p50):
            slow &= values < criteria.ratio(np.fmax(noise_of(ref, spread), ref.baseline_noise)) * ref.baseline_p50
    return slow & np.isfinite(values)


def beyond_noise(values, ref: Reference, criteria: Criteria, spread=None) -> np.ndarray:
    """Return which values lie beyond the measurement's own noise (below noise_cut of the reference).

    A strike that its noise could explain (the cut stopped falling at max_noise) is WARN, never FAIL.
    """
    with np.errstate(invalid="ignore"):
        return np.asarray(values) < criteria.noise_cut(noise_of(ref, spread)) * ref.value


def evidence(
    value: float, ref: Reference, spread: float = float("nan"), criteria: Criteria | None = None, **where
) -> dict:
    """Return one evidence record: the raw value beside the peer reference, its noise and the baseline."""

    def rounded(x):  # significant figures: an 8 B allreduce's busbw is 1e-4 GB/s
        return None if x is None or not np.isfinite(x) else float(f"{x:.5g}")

    z = (value - ref.value) / ref.sd if np.isfinite(ref.sd) and ref.sd > 0 else float("nan")
    return {
        **where,
        "metric": "busbw_GBps",
        "value": rounded(value),
        "peer_ref": rounded(ref.value),
        "peers": ref.count,
        "ratio_to_peers": rounded(value / ref.value) if ref.value else None,
        "robust_z": rounded(z),
        "spread": rounded(spread),
        "peer_spread": rounded(ref.noise),
        "baseline_p50": rounded(ref.baseline_p50),
        "ratio_to_baseline": rounded(value / ref.baseline_p50) if np.isfinite(ref.baseline_p50) else None,
        **({"beyond_noise": bool(beyond_noise(value, ref, criteria, spread))} if criteria else {}),
    }


@dataclass(frozen=True)
class Localized:
    blamed: dict[int, int]  # link id -> slow flows it alone explains
    ambiguous: list[tuple[int, ...]]  # candidate link sets of slow flows that several links could explain
    unexplained: int  # slow flows whose every link also carried a good flow (noise, or an intermittent fault)


def localize_links(slow_links: np.ndarray, cleared: np.ndarray) -> Localized:
    """Name the links behind slow flows: a link on any good flow is good; a slow flow's one remaining link is bad.

    `slow_links` is slow flows x 4 link ids (-1 for none); `cleared[link]` is True when a good flow
    crossed it. Boolean tomography with noiseless-safe blame: a link is named only when it is the
    single link of a slow flow that no good flow crossed.
    """
    blamed: dict[int, int] = {}
    ambiguous: list[tuple[int, ...]] = []
    unexplained = 0
    for row in slow_links:
        row = row[row >= 0]
        left = row[~cleared[row]]
        if len(left) == 1:
            blamed[int(left[0])] = blamed.get(int(left[0]), 0) + 1
        elif len(left) > 1:
            ambiguous.append(tuple(int(x) for x in left))
        else:
            unexplained += 1
    ambiguous = [c for c in dict.fromkeys(ambiguous) if not any(x in blamed for x in c)]  # explained by a named link
    return Localized(blamed, ambiguous, unexplained)
