"""Is a measurement slow? Against its peers tonight and against the stored baseline; which link is bad?

values of one test class (GB/s, higher is better) + Criteria + baseline p50 -> per-test strikes with
the evidence (peer reference, ratios, robust z); slow and good flows + their links -> blamed links.
Rules from reference/health/conventions.md section 8 and localization.md sections 3.6 and 5.
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
    shared_fraction: float = 0.5  # this share of a rail's or leaf's members failing together is a shared cause
    shared_min: int = 3  # ... and at least this many (two bad nodes on one leaf are two bad nodes)

    def check(self) -> None:
        from ..errors import NcbenchError

        if not 0 < self.slow_ratio < 1:
            raise NcbenchError(f"--slow-ratio {self.slow_ratio}: give a fraction of the peer reference, 0 < r < 1")
        if self.z_slow < 0:
            raise NcbenchError(f"--z {self.z_slow}: a robust z threshold is a positive number of sd")


@dataclass(frozen=True)
class Reference:
    """What tonight's peers say a test of one class should reach."""

    value: float  # median of the class (the best value when there are fewer than MIN_PEERS)
    sd: float  # robust sd (1.4826 MAD, floored); NaN when there were too few peers for one
    count: int
    baseline_p50: float = float("nan")


def reference(values: np.ndarray, baseline_p50: float = float("nan")) -> Reference:
    """Return the peer reference of one class of tests (NaN values, i.e. no answer, are left out)."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return Reference(float("nan"), float("nan"), 0, baseline_p50)
    if len(v) < MIN_PEERS:
        return Reference(float(v.max()), float("nan"), len(v), baseline_p50)
    median = float(np.median(v))
    sd = max(MAD_TO_SD * float(np.median(np.abs(v - median))), MAD_FLOOR * median)
    return Reference(median, sd, len(v), baseline_p50)


def strikes(values: np.ndarray, ref: Reference, criteria: Criteria) -> np.ndarray:
    """Return which tests are slow: below the ratio floor, far below the peers, and below the baseline."""
    with np.errstate(invalid="ignore", divide="ignore"):
        slow = values < criteria.slow_ratio * ref.value
        if np.isfinite(ref.sd):
            slow &= (values - ref.value) / ref.sd <= -criteria.z_slow
        if np.isfinite(ref.baseline_p50):
            slow &= values < criteria.slow_ratio * ref.baseline_p50
    return slow & np.isfinite(values)


def evidence(value: float, ref: Reference, **where) -> dict:
    """Return one evidence record: the raw value beside the peer reference and the baseline."""

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
        "baseline_p50": rounded(ref.baseline_p50),
        "ratio_to_baseline": rounded(value / ref.baseline_p50) if np.isfinite(ref.baseline_p50) else None,
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
