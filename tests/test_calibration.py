"""Calibrated bands: the model's out-of-sample discrepancy is recovered from curves and carried into predictions."""

from dataclasses import replace
from statistics import NormalDist

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


def test_a_calibrated_band_holds_new_curves_of_the_same_kind_as_often_as_it_says():
    found = calibrate.estimate(*synthetic(2, curves=300))
    e, d, n = synthetic(3, curves=300)  # curves it has not seen
    sd = np.diag(found.log_sd(n, d))  # [doublings, sizes]: each point at its own
    z = NormalDist().inv_cdf(predict.BAND[1] / 100)  # the band predict draws: 80 %, z = 1.28
    inside = np.abs(e) <= z * sd
    assert abs(inside.mean() - predict.BAND_PERCENT / 100) <= 0.04


def test_the_fits_own_extrapolation_error_is_pooled_with_the_calibrated_one_by_the_evidence_behind_each():
    known = calibrate.Discrepancy({"latency": 0.05, "mid-size": 0.2, "bandwidth": 0.05}, {"mid-size": 12})
    sizes = np.array([8.0, 16 << 20])  # latency: too few points of its own, pooled over all 12
    gpus = np.array([64.0, 1024.0])  # 0 and 4 doublings beyond the fit
    own = predict.Draws(np.ones((1, 4)), 0.01, 0.3, max_gpus=64.0, per_doubling_scales=4)
    sd = predict._model_log_sd(own, known, gpus, sizes)[0]
    pooled = (4 * 0.3**2 + 12 * np.array([0.05, 0.2]) ** 2) / 16
    assert sd == pytest.approx(np.sqrt(np.maximum(0.01**2, np.array([[0.0], [4.0]]) * pooled)))
    # A fit that measured nothing of its own (fewer than three scales) takes the calibrated spread alone, and
    # one with many forward-chained predictions outweighs the table.
    none = replace(own, per_doubling_log_sd=0.0, per_doubling_scales=0)
    assert predict._model_log_sd(none, known, gpus, sizes)[0][1] == pytest.approx(2 * np.array([0.05, 0.2]))
    many = replace(own, per_doubling_scales=10_000)
    assert predict._model_log_sd(many, known, gpus, sizes)[0][1] == pytest.approx(np.sqrt(4 * 0.09), rel=0.01)


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
    # Its residual (0.69: emulated nodes on one machine) would hide the walk beyond the fit, which it floors:
    # as a fit that matches its own points to 2 %.
    fitted = replace(fitted, fit=replace(fitted.fit, residual_log_sd=0.02))
    known = calibrate.load()
    args = {"ops": ("allreduce",), "gpus": (4, 64, 4096), "nbytes": (8, 16 << 20), "algorithms": ("ring",)}
    carried = predict.predict(fitted, **args)
    alone = predict.predict(fitted, **args, discrepancy=None)
    assert set(carried["band"]) == {"fit+discrepancy"} and set(alone["band"]) == {"fit"}
    assert np.allclose(carried["time_us"], alone["time_us"])  # the central estimate is the model's
    # The model's error beyond the fit is the calibrated one (this fit, at one scale, has none of its own): it
    # grows with the square root of the doublings beyond max_gpus = 4 once it passes the fit's residual, and is
    # absent without the table.
    drawn = predict.draws(fitted, calibrated=True)
    gpus, sizes = np.array([4.0, 64.0, 4096.0]), np.array([8.0, 16 << 20])
    beyond = np.array([0.0, 4.0, 10.0])[:, None] * known.log_sd(sizes, [1.0]) ** 2
    assert predict._model_log_sd(drawn, known, gpus, sizes)[0] == pytest.approx(
        np.sqrt(np.maximum(fitted.fit.residual_log_sd**2, beyond))
    )
    assert predict._model_log_sd(drawn, None, gpus, sizes)[0] == pytest.approx(fitted.fit.residual_log_sd)
    width = carried["time_us_high"] / carried["time_us_low"]
    for size in args["nbytes"]:  # the same draws further out: a wider band
        assert np.all(np.diff(width[carried["bytes"] == size].to_numpy()) > 0), size
    at_fit = carried[carried["gpus"] == 4]
    # At the fitted scale nothing is extrapolated: the calibrated error (which holds the fitting noise) adds
    # nothing, and the fitted parameters stay put, so the band is no wider than the fit's own covariance gives.
    at_fit_alone = alone[alone["gpus"] == 4]
    assert np.all(
        (at_fit["time_us_high"] / at_fit["time_us_low"]).to_numpy()
        <= (at_fit_alone["time_us_high"] / at_fit_alone["time_us_low"]).to_numpy() * 1.05  # 200 draws: sampling noise
    )
    wider = replace(known, per_doubling_log_sd={r: 2 * s for r, s in known.per_doubling_log_sd.items()})
    twice = predict.predict(fitted, **args, discrepancy=wider)
    assert np.all((twice["time_us_high"] >= carried["time_us_high"]).to_numpy())
    nominal = predict.predict(topology.load("topologies/this-machine.toml"), **args)
    assert set(nominal["band"]) == {"nominal"}
