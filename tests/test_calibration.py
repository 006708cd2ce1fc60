"""Calibrated bands: the model's out-of-sample discrepancy is recovered from curves and carried into predictions."""

from dataclasses import replace

import numpy as np
import pytest

from ncbench.errors import NcbenchError
from ncbench.model import calibrate, predict, topology

TRUE = {"latency": 0.04, "mid-size": 0.25, "bandwidth": 0.10}  # log-error sd per sqrt(doubling), per regime
SIZES = {"latency": 8, "mid-size": 16 << 20, "bandwidth": 1 << 30}


def synthetic(seed: int, curves: int = 40):
    """Return (log errors, doublings, sizes) of curves whose model misses by TRUE's random walk per doubling."""
    rng = np.random.default_rng(seed)
    e, d, n = [], [], []
    for i in range(curves):
        regime = calibrate.REGIMES[i % 3]
        beyond = np.arange(1, 6, dtype=float)  # fitted on the smaller half, predicted 2x .. 32x further
        walk = np.cumsum(rng.standard_normal(beyond.size)) * TRUE[regime]  # independent steps: var = s^2 d
        e.append(walk)
        d.append(beyond)
        n.append(np.full(beyond.size, SIZES[regime]))
    return np.concatenate(e), np.concatenate(d), np.concatenate(n)


def test_the_discrepancy_of_synthetic_curves_is_recovered_per_regime():
    found = calibrate.estimate(*synthetic(0, curves=300))
    for regime, truth in TRUE.items():
        assert found.per_doubling_log_sd[regime] == pytest.approx(truth, rel=0.12), regime
        assert found.points[regime] == 500
    few = calibrate.estimate(*(x[:10] for x in synthetic(1, curves=6)))  # latency 5 points, mid-size 5: own spread
    assert few.points["bandwidth"] == 0  # no points of its own: the pooled spread
    assert few.per_doubling_log_sd["bandwidth"] == pytest.approx(
        np.sqrt(np.mean(synthetic(1, 6)[0][:10] ** 2 / synthetic(1, 6)[1][:10]))
    )


def test_a_calibrated_band_holds_new_curves_of_the_same_kind_about_95_percent():
    found = calibrate.estimate(*synthetic(2, curves=300))
    e, d, n = synthetic(3, curves=300)  # curves it has not seen
    sd = np.diag(found.log_sd(n, d))  # [doublings, sizes]: each point at its own
    inside = np.abs(e) <= 1.96 * sd
    assert 0.92 <= inside.mean() <= 0.98


def test_the_table_round_trips_and_a_bad_one_is_one_sentence(tmp_path):
    found = calibrate.estimate(*synthetic(4), curves=40, source="synthetic")
    path = tmp_path / "d.toml"
    path.write_text(calibrate.dumps(found))
    assert calibrate.load(path) == found
    path.write_text('[regime."latency"]\nper_doubling_log_sd = 0.1\n')
    with pytest.raises(NcbenchError) as err:
        calibrate.load(path)
    assert err.value.exit_code == 65 and str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_fitted_topology_carries_the_shipped_discrepancy_and_says_so():
    fitted = topology.load("topologies/this-machine.fitted.toml")
    known = calibrate.load()
    args = {"ops": ("allreduce",), "gpus": (4, 64, 4096), "nbytes": (8, 16 << 20), "algorithms": ("ring",)}
    carried = predict.predict(fitted, **args)
    alone = predict.predict(fitted, **args, discrepancy=None)
    assert set(carried["band"]) == {"fit+discrepancy"} and set(alone["band"]) == {"fit"}
    assert np.allclose(carried["time_us"], alone["time_us"])  # the central estimate is the model's
    width = carried["time_us_high"] / carried["time_us_low"]
    assert np.all(
        width.to_numpy()[carried["gpus"] > 4]
        > (alone["time_us_high"] / alone["time_us_low"]).to_numpy()[carried["gpus"] > 4]
    )
    at_fit = carried[carried["gpus"] == 4]
    assert np.allclose(at_fit["time_us_high"], alone[alone["gpus"] == 4]["time_us_high"])  # no extrapolation yet
    wider = replace(known, per_doubling_log_sd={r: 2 * s for r, s in known.per_doubling_log_sd.items()})
    twice = predict.predict(fitted, **args, discrepancy=wider)
    assert np.all((twice["time_us_high"] >= carried["time_us_high"]).to_numpy())
    nominal = predict.predict(topology.load("topologies/this-machine.toml"), **args)
    assert set(nominal["band"]) == {"nominal"}
