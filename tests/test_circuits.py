"""Tests for odernn_lite.circuits: synthetic RLC data sets."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import signal
from scipy.integrate import solve_ivp

from odernn_lite.circuits import filtered_noise, linear_rlc, nonlinear_rlc, rlc_step_response

DT = 0.5e-6
L0 = 50e-6
C = 270e-9


def saturating_inductance(i):
    """L(i) of the nonlinear circuit, written out again as an independent check."""
    return L0 * (0.9 * (np.arctan(-5 * (np.abs(i) - 5)) / np.pi + 0.5) + 0.1)


# ---------------------------------------------------------------- filtered_noise


def test_filtered_noise_has_exact_std_zero_mean_and_is_low_pass():
    x = filtered_noise(8192, dt=DT, std=3.0, bandwidth=150e3, seed=0)
    assert x.shape == (8192,) and x.dtype == np.float64
    assert x.std() == pytest.approx(3.0, rel=1e-12)
    assert abs(x.mean()) < 1e-12
    freq, power = signal.periodogram(x, fs=1 / DT)
    # A 4th-order Butterworth is 4 * 20 * log10(3) = 38 dB down at 3x the cut-off.
    assert power[freq > 3 * 150e3].sum() < 1e-3 * power.sum()


def test_filtered_noise_is_reproducible():
    def noise(seed):
        return filtered_noise(500, dt=DT, std=1.0, bandwidth=100e3, seed=seed)

    np.testing.assert_array_equal(noise(7), noise(7))
    assert not np.allclose(noise(7), noise(8))


# ---------------------------------------------------------------- closed-form step response


def test_step_response_closed_form_properties():
    V = 2.0
    alpha = 3.0 / (2 * L0)
    wd = math.sqrt(1 / (L0 * C) - alpha**2)
    t_peak = math.pi / wd
    v = rlc_step_response(np.array([0.0, t_peak, 1.0]), V=V)
    assert v[0] == 0.0
    assert v[1] == pytest.approx(V * (1 + math.exp(-alpha * t_peak)), rel=1e-12)  # first overshoot
    assert v[2] == pytest.approx(V, rel=1e-12)  # settled


def test_step_response_is_continuous_across_critical_damping():
    t = np.linspace(0, 50e-6, 201)
    R_crit = 2 * math.sqrt(L0 / C)
    v_crit = rlc_step_response(t, R=R_crit, L=L0, C=C)
    for R in (R_crit * (1 - 1e-5), R_crit * (1 + 1e-5)):
        np.testing.assert_allclose(rlc_step_response(t, R=R, L=L0, C=C), v_crit, rtol=0, atol=1e-4)


# ---------------------------------------------------------------- linear_rlc


@pytest.mark.parametrize("R", [3.0, 100.0], ids=["underdamped", "overdamped"])
def test_linear_rlc_step_matches_closed_form(R):
    V, n = 5.0, 400
    df = linear_rlc(n, R=R, u=np.full(n, V))
    np.testing.assert_array_equal(df["T"], np.arange(n) * DT)
    np.testing.assert_array_equal(df["in"], V)
    expected = rlc_step_response(df["T"], V=V, R=R)
    np.testing.assert_allclose(df["out"], expected, rtol=0, atol=1e-7 * V)


def test_dataframe_layout():
    df = linear_rlc(300, jitter=0.5, drop=0.2)
    assert list(df.columns) == ["T", "in", "out"]
    assert (df.dtypes == np.float64).all()
    pd.testing.assert_index_equal(df.index, pd.RangeIndex(len(df)))


def test_generated_input_is_filtered_noise_with_requested_std():
    df = linear_rlc(2000, input_std=20.0, bandwidth=100e3, seed=4)
    expected = filtered_noise(2000, dt=DT, std=20.0, bandwidth=100e3, seed=4)
    np.testing.assert_array_equal(df["in"], expected)
    assert df["in"].std(ddof=0) == pytest.approx(20.0, rel=1e-12)


@pytest.mark.parametrize("simulate", [linear_rlc, nonlinear_rlc])
def test_same_seed_gives_same_data_and_other_seed_differs(simulate):
    kwargs = dict(n=300, noise_std=0.1, jitter=0.3, drop=0.1)
    pd.testing.assert_frame_equal(simulate(seed=1, **kwargs), simulate(seed=1, **kwargs))
    assert not simulate(seed=1, **kwargs).equals(simulate(seed=2, **kwargs))


def test_jitter_moves_stamps_but_keeps_the_input_signal():
    n = 1000
    regular = linear_rlc(n, seed=3)
    jittered = linear_rlc(n, seed=3, jitter=0.5)
    t = jittered["T"].to_numpy()
    assert len(t) == n
    assert np.all(np.diff(t) > 0)
    assert np.ptp(np.diff(t)) > 0.3 * DT  # visibly irregular
    assert np.all(np.abs(t - np.arange(n) * DT) <= 0.25 * DT)
    assert t[0] >= 0 and t[-1] <= (n - 1) * DT
    np.testing.assert_array_equal(jittered["in"], np.interp(t, regular["T"], regular["in"]))


def test_drop_removes_interior_samples_only():
    n = 1000
    full = linear_rlc(n, seed=5)
    dropped = linear_rlc(n, seed=5, drop=0.3)
    assert len(dropped) == n - round(0.3 * (n - 2))
    assert dropped["T"].iloc[0] == 0.0 and dropped["T"].iloc[-1] == (n - 1) * DT
    kept = np.searchsorted(full["T"], dropped["T"])
    np.testing.assert_array_equal(full["T"].to_numpy()[kept], dropped["T"])
    np.testing.assert_array_equal(dropped["in"], full["in"].iloc[kept])
    np.testing.assert_allclose(dropped["out"], full["out"].iloc[kept], rtol=0, atol=1e-9)


def test_jitter_and_drop_together_keep_first_and_last_stamp():
    n = 500
    jittered = linear_rlc(n, seed=6, jitter=0.8)
    both = linear_rlc(n, seed=6, jitter=0.8, drop=0.5)
    assert len(both) == n - round(0.5 * (n - 2))
    assert np.all(np.diff(both["T"]) > 0)
    assert both["T"].iloc[0] == jittered["T"].iloc[0]
    assert both["T"].iloc[-1] == jittered["T"].iloc[-1]


@pytest.mark.parametrize("jitter", [1e-13, 0.5])
def test_step_response_at_jittered_stamps(jitter):
    # jitter=1e-13 puts stamps within a few ulp of grid points: pieces too
    # short for the adaptive solver's step-size control.
    V, n = 5.0, 400
    df = linear_rlc(n, u=np.full(n, V), jitter=jitter, drop=0.1, seed=12)
    assert np.all(np.diff(df["T"]) > 0)
    expected = rlc_step_response(df["T"], V=V)
    np.testing.assert_allclose(df["out"], expected, rtol=0, atol=1e-7 * V)


@pytest.mark.parametrize("simulate", [linear_rlc, nonlinear_rlc])
def test_output_at_irregular_stamps_matches_independent_solver(simulate):
    n = 120
    df = simulate(n, seed=8, jitter=0.7, drop=0.2)
    grid = np.arange(n) * DT
    u = filtered_noise(n, dt=DT, std=80.0, bandwidth=150e3, seed=8)
    inductance = (lambda i: L0) if simulate is linear_rlc else saturating_inductance

    def rhs(t, x):
        v_c, i_l = x
        return [i_l / C, (np.interp(t, grid, u) - 3.0 * i_l - v_c) / inductance(i_l)]

    ref = solve_ivp(
        rhs, (0, grid[-1]), [0.0, 0.0], method="DOP853",
        t_eval=df["T"], rtol=1e-12, atol=1e-10, max_step=DT,
    )
    np.testing.assert_allclose(df["out"], ref.y[0], rtol=0, atol=1e-7 * np.abs(ref.y[0]).max())


def test_noise_is_added_to_output_only():
    n = 5000
    clean = linear_rlc(n, seed=9)
    noisy = linear_rlc(n, seed=9, noise_std=0.5)
    pd.testing.assert_frame_equal(noisy[["T", "in"]], clean[["T", "in"]])
    noise = noisy["out"] - clean["out"]
    assert noise.std() == pytest.approx(0.5, rel=0.05)
    assert abs(noise.mean()) < 4 * 0.5 / math.sqrt(n)


# ---------------------------------------------------------------- nonlinear_rlc


def test_nonlinear_rlc_with_small_currents_is_linear_with_effective_inductance():
    n = 2000
    L_small_current = float(saturating_inductance(0.0))
    assert L_small_current == pytest.approx(L0 * (0.9 * (math.atan(25) / math.pi + 0.5) + 0.1))
    nonlinear = nonlinear_rlc(n, input_std=0.01, seed=10)["out"]
    scale = np.abs(nonlinear).max()
    effective = linear_rlc(n, L=L_small_current, input_std=0.01, seed=10)["out"]
    assert np.abs(nonlinear - effective).max() < 1e-4 * scale
    # The 1 % error of using L0 instead shows the comparison above is sharp.
    nominal = linear_rlc(n, L=L0, input_std=0.01, seed=10)["out"]
    assert np.abs(nonlinear - nominal).max() > 1e-2 * scale


def test_nonlinear_rlc_default_input_saturates_the_inductor():
    n = 2000
    nonlinear = nonlinear_rlc(n, seed=11)
    linear = linear_rlc(n, L=L0, seed=11)
    assert not nonlinear.isna().any().any()
    assert nonlinear["in"].std(ddof=0) == pytest.approx(80.0, rel=1e-12)
    np.testing.assert_array_equal(nonlinear["in"], linear["in"])
    difference = np.linalg.norm(nonlinear["out"] - linear["out"]) / np.linalg.norm(linear["out"])
    assert difference > 0.2


# ---------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: linear_rlc(1), "n"),
        (lambda: linear_rlc(10.5), "n"),
        (lambda: linear_rlc(10, dt=0.0), "dt"),
        (lambda: linear_rlc(10, R=-1.0), "R"),
        (lambda: linear_rlc(10, L=0.0), "L"),
        (lambda: linear_rlc(10, C=float("nan")), "C"),
        (lambda: nonlinear_rlc(10, L0=-5e-6), "L0"),
        (lambda: linear_rlc(10, u=np.ones(9)), "u"),
        (lambda: linear_rlc(3, u=[0.0, np.inf, 1.0]), "u"),
        (lambda: linear_rlc(10, jitter=1.0), "jitter"),
        (lambda: nonlinear_rlc(10, jitter=-0.1), "jitter"),
        (lambda: linear_rlc(10, drop=1.0), "drop"),
        (lambda: linear_rlc(10, noise_std=-0.1), "noise_std"),
        (lambda: linear_rlc(10, bandwidth=1.5e6), "bandwidth"),
        (lambda: nonlinear_rlc(10, input_std=-1.0), "input_std"),
        (lambda: filtered_noise(10, dt=DT, std=-1.0, bandwidth=1e5, seed=0), "std"),
        (lambda: filtered_noise(10, dt=DT, std=1.0, bandwidth=1e5, seed=0, order=0), "order"),
        (lambda: rlc_step_response([-1e-6, 0.0]), "t"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()
