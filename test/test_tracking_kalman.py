"""Kalman filter: reference noise, dt scaling, batched update."""

from __future__ import annotations

import numpy as np

from assoc_logger_ros.tracking import kalman


def _state(n: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = np.c_[rng.uniform(50, 500, (n, 2)), rng.uniform(0.3, 0.6, n), rng.uniform(40, 200, n)]
    mean, cov = kalman.initiate(z)
    mean[:, 4:] = rng.normal(0, 2, (n, 4))
    return z, mean, cov


def test_initiate_reference_std():
    """initiate: zero velocity, std 2/20 h for position, 10/160 h for velocity (reference)."""
    z = np.array([[100.0, 200.0, 0.5, 80.0]])
    mean, cov = kalman.initiate(z)
    assert np.array_equal(mean[0, :4], z[0]) and not mean[0, 4:].any()
    std = np.sqrt(np.diag(cov[0]))
    np.testing.assert_allclose(std, [8, 8, 1e-2, 8, 5, 5, 1e-5, 5])


def test_predict_dt_one_matches_reference_formula():
    """predict(dt=1) equals F P F^T + Q with the reference per-frame Q."""
    _, mean, cov = _state()
    f = np.eye(8)
    f[:4, 4:] = np.eye(4)
    new_mean, new_cov = kalman.predict(mean, cov, 1.0)
    for i in range(len(mean)):
        h = mean[i, 3]
        q = np.square([h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160])
        np.testing.assert_allclose(new_cov[i], f @ cov[i] @ f.T + np.diag(q), rtol=1e-12)
        np.testing.assert_allclose(new_mean[i], f @ mean[i], rtol=1e-12)


def test_two_half_steps_equal_one_step_in_uncertainty_growth():
    """Process noise scales with dt: the diagonal noise added by two dt=0.5 steps sums to dt=1."""
    _, mean, _ = _state()
    zero = np.zeros((len(mean), 8, 8))
    m_half, c_half = kalman.predict(mean, zero, 0.5)
    mean_fixed_h = m_half.copy()
    mean_fixed_h[:, 3] = mean[:, 3]          # same heights as the single step
    _, c_two = kalman.predict(mean_fixed_h, c_half, 0.5)
    _, c_one = kalman.predict(mean, zero, 1.0)
    # velocity blocks are pure random walks: exactly additive
    np.testing.assert_allclose(c_two[:, 4:, 4:], c_one[:, 4:, 4:], rtol=1e-12)
    m2, _ = kalman.predict(m_half, c_half, 0.5)
    m1, _ = kalman.predict(mean, zero, 1.0)
    np.testing.assert_allclose(m2[:, :4], m1[:, :4], rtol=1e-12)


def test_per_track_dt_equals_individual_predictions():
    """A (N,) dt vector gives the same result as predicting each track alone."""
    _, mean, cov = _state(4)
    dt = np.array([1.0, 2.0, 0.5, 0.0])
    bm, bc = kalman.predict(mean, cov, dt)
    for i in range(4):
        m, c = kalman.predict(mean[i:i + 1], cov[i:i + 1], dt[i])
        np.testing.assert_allclose(bm[i], m[0], rtol=1e-12)
        np.testing.assert_allclose(bc[i], c[0], rtol=1e-12)


def test_update_batched_equals_textbook():
    """Batched update equals K = P H^T S^-1 per track, and pulls the mean to the measurement."""
    z, mean, cov = _state(3)
    mean, cov = kalman.predict(mean, cov)
    meas = z + 3.0
    nm, nc = kalman.update(mean, cov, meas)
    h = np.eye(4, 8)
    for i in range(3):
        pm, s = kalman.project(mean[i:i + 1], cov[i:i + 1])
        k = cov[i] @ h.T @ np.linalg.inv(s[0])
        np.testing.assert_allclose(nm[i], mean[i] + k @ (meas[i] - pm[0]), rtol=1e-9)
        np.testing.assert_allclose(nc[i], cov[i] - k @ s[0] @ k.T, rtol=1e-9, atol=1e-9)
        assert np.linalg.norm(nm[i, :4] - meas[i]) < np.linalg.norm(mean[i, :4] - meas[i])


def test_box_conversions_round_trip_and_empty():
    """Xyxy <-> xyah round trip; empty inputs give (0, 4)."""
    b = np.array([[10.0, 20.0, 50.0, 120.0], [0.0, 0.0, 1.0, 2.0]])
    np.testing.assert_allclose(kalman.xyah_to_xyxy(kalman.xyxy_to_xyah(b)), b)
    assert kalman.xyxy_to_xyah(np.zeros((0, 4))).shape == (0, 4)
    assert kalman.xyah_to_xyxy(np.zeros((0, 8))).shape == (0, 4)
    m, c = kalman.predict(np.zeros((0, 8)), np.zeros((0, 8, 8)))
    assert m.shape == (0, 8) and c.shape == (0, 8, 8)


def test_block_form_equals_full_filter():
    """The (N, 3, 4) block filter the tracker runs gives the 8x8 filter's numbers."""
    rng = np.random.default_rng(5)
    z, _, _ = _state(6, seed=5)
    m, p = kalman.initiate(z)
    mb, b = kalman.initiate_blocks(z)
    for step in range(15):
        dt = rng.uniform(0.5, 3.0, 6) if step % 3 else 1.0
        m, p = kalman.predict(m, p, dt)
        mb, b = kalman.predict_blocks(mb, b, dt)
        meas = m[:, :4] + rng.normal(0, 2, (6, 4))
        m, p = kalman.update(m, p, meas)
        mb, b = kalman.update_blocks(mb, b, meas)
    np.testing.assert_allclose(mb, m, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kalman.from_blocks(b), p, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(kalman.to_blocks(kalman.from_blocks(b)), b)
