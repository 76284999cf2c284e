"""Deterministic synthetic data from simulated electrical circuits.

The circuit is the series RLC network used as a benchmark by Forgione & Piga
(2021), "Continuous-time system identification with neural networks: model
structures and fitting criteria", European Journal of Control 59. An input
voltage ``v_in`` drives a resistor ``R``, an inductor ``L`` and a capacitor
``C`` in series; the measured output is the capacitor voltage ``v_C``.

Every generator is a pure function of its arguments: randomness comes only
from the ``seed`` argument through :func:`numpy.random.default_rng`, so the
same call always returns the same data.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import signal
from scipy.integrate import ode

__all__ = [
    "filtered_noise",
    "linear_rlc",
    "nonlinear_rlc",
    "rlc_step_response",
]

# Tolerances of the ODE solver. Compared with runs at rtol=1e-13, rtol=1e-11
# keeps the error of the default nonlinear_rlc output (10,000 samples) below
# 1e-8 times its peak value; rtol=1e-10 gave 6e-8, as the saturating inductor
# amplifies the local errors. The linear circuit is then exact to ~1e-12.
_RTOL = 1e-11
# v_C (V) is of the order of the input voltage and i_L (A) of that divided by
# a few ohms, so an absolute tolerance of 1e-13 times the input scale only
# matters while a state crosses zero; elsewhere the relative one rules.
_ATOL_PER_INPUT_VOLT = 1e-13


def filtered_noise(
    n: int,
    *,
    dt: float,
    std: float,
    bandwidth: float,
    seed: int | np.random.Generator | None,
    order: int = 4,
) -> np.ndarray:
    """Band-limited Gaussian noise with an exact standard deviation.

    White Gaussian noise ``w_k`` sampled at rate ``1/dt`` is passed through a
    causal Butterworth low-pass filter of the given order and cut-off
    frequency, ``x = sosfilt(butter(order, bandwidth, fs=1/dt), w)``, and is
    then shifted and scaled so that its sample mean is 0 and its sample
    standard deviation (``ddof=0``) is exactly ``std``.

    Args:
        n: Number of samples, at least 2.
        dt: Sampling period in seconds, > 0.
        std: Standard deviation of the result, >= 0 (in the unit of the
            signal, e.g. volts).
        bandwidth: Cut-off frequency of the filter in hertz, in
            ``(0, 1 / (2 * dt))``.
        seed: Anything :func:`numpy.random.default_rng` accepts. A
            ``Generator`` is used (and advanced) as is.
        order: Order of the Butterworth filter, >= 1.

    Returns:
        Array of shape ``(n,)``, dtype float64.

    Raises:
        ValueError: If an argument is out of its range.
    """
    _check_n(n)
    _check_positive(dt=dt, bandwidth=bandwidth)
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    nyquist = 0.5 / dt
    if not bandwidth < nyquist:
        raise ValueError(
            f"bandwidth must be below the Nyquist frequency 1/(2*dt) = {nyquist:g} Hz, "
            f"got {bandwidth!r}"
        )
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")

    rng = np.random.default_rng(seed)
    white = rng.standard_normal(n)
    sos = signal.butter(order, bandwidth, fs=1.0 / dt, output="sos")
    x = signal.sosfilt(sos, white)
    x = x - x.mean()
    return x * (std / x.std())


def linear_rlc(
    n: int = 10_000,
    *,
    dt: float = 0.5e-6,
    R: float = 3.0,
    L: float = 50e-6,
    C: float = 270e-9,
    input_std: float = 80.0,
    bandwidth: float = 150e3,
    u: np.ndarray | None = None,
    noise_std: float = 0.0,
    jitter: float = 0.0,
    drop: float = 0.0,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Simulate a series RLC circuit with a constant inductance.

    The states are the capacitor voltage ``v_C`` (V) and the inductor
    current ``i_L`` (A), both zero at ``t = 0``::

        dv_C/dt = i_L / C
        di_L/dt = (v_in(t) - R * i_L - v_C) / L

    **Input.** The input is defined by samples ``u_k`` on the regular grid
    ``t_k = k * dt``, ``k = 0..n-1``. If ``u`` is None they are
    ``filtered_noise(n, dt=dt, std=input_std, bandwidth=bandwidth, seed=seed)``.
    Between grid points the continuous-time input ``v_in(t)`` is the linear
    interpolation of the samples (a first-order hold), which the solver
    follows exactly: it is restarted at every grid point, where the slope of
    ``v_in`` changes.

    **Sampling.** With ``jitter = drop = 0`` the output is sampled on the grid
    ``t_k``. Otherwise each time stamp is moved to
    ``t_k + jitter * dt * U_k`` with ``U_k ~ Uniform(-0.5, 0.5)`` (clipped to
    ``[0, (n-1)*dt]``; the stamps stay strictly increasing), and then
    ``round(drop * (n - 2))`` stamps chosen at random, never the first or the
    last, are removed. The ``in`` column holds ``v_in`` at the stamps and the
    ``out`` column the exact (to solver tolerance) ``v_C`` there.

    **Noise.** If ``noise_std > 0``, independent Gaussian noise of that
    standard deviation (V) is added to ``out`` only.

    **Random draws.** One generator ``numpy.random.default_rng(seed)`` is used,
    in this order: the input noise (only if ``u`` is None), the jitter
    offsets, the choice of dropped samples, the measurement noise. The sizes
    of the draws do not depend on ``jitter``, ``drop`` or ``noise_std``, so
    changing one of those knobs leaves the other effects unchanged (e.g. the
    same input signal with and without jitter).

    Args:
        n: Number of grid samples, at least 2.
        dt: Sampling period in seconds, > 0.
        R: Resistance in ohms, > 0.
        L: Inductance in henries, > 0.
        C: Capacitance in farads, > 0.
        input_std: Standard deviation (V) of the generated input.
        bandwidth: Cut-off frequency (Hz) of the generated input.
        u: Optional input samples (V) on the grid, shape ``(n,)``, finite.
            Overrides ``input_std`` and ``bandwidth``.
        noise_std: Standard deviation (V) of the measurement noise, >= 0.
        jitter: Amplitude of the time-stamp jitter, as a fraction of ``dt``,
            in ``[0, 1)``.
        drop: Fraction of the samples to remove, in ``[0, 1)``.
        seed: Anything :func:`numpy.random.default_rng` accepts.

    Returns:
        DataFrame with ``m`` rows (``m = n`` unless ``drop > 0``), index
        ``0..m-1``, and float64 columns ``T`` (time, s), ``in`` (input
        voltage, V) and ``out`` (capacitor voltage, V), in that order.

    Raises:
        ValueError: If an argument is out of its range; the message names it.
    """
    _check_positive(L=L)
    return _series_rlc_dataset(
        n=n,
        dt=dt,
        R=R,
        C=C,
        inductance=lambda i_l: L,
        input_std=input_std,
        bandwidth=bandwidth,
        u=u,
        noise_std=noise_std,
        jitter=jitter,
        drop=drop,
        seed=seed,
    )


def nonlinear_rlc(
    n: int = 10_000,
    *,
    dt: float = 0.5e-6,
    R: float = 3.0,
    L0: float = 50e-6,
    C: float = 270e-9,
    input_std: float = 80.0,
    bandwidth: float = 150e3,
    u: np.ndarray | None = None,
    noise_std: float = 0.0,
    jitter: float = 0.0,
    drop: float = 0.0,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Simulate a series RLC circuit with a saturating inductor.

    Same circuit, input, sampling, noise and random draws as
    :func:`linear_rlc`, but the inductance falls as the current grows, as in
    Forgione & Piga (2021), Eur. J. Control 59::

        dv_C/dt = i_L / C
        di_L/dt = (v_in(t) - R * i_L - v_C) / L(i_L)
        L(i)    = L0 * (0.9 * (arctan(-5 * (|i| - 5)) / pi + 0.5) + 0.1)

    with ``i`` in amperes: ``L`` is about ``0.99 * L0`` for small currents,
    drops around ``|i| = 5 A`` and tends to ``0.1 * L0`` for large ones. With
    the default input (80 V std) the current regularly exceeds 5 A, so the
    nonlinearity matters.

    Args:
        n: Number of grid samples, at least 2.
        dt: Sampling period in seconds, > 0.
        R: Resistance in ohms, > 0.
        L0: Nominal inductance in henries, > 0.
        C: Capacitance in farads, > 0.
        input_std: Standard deviation (V) of the generated input.
        bandwidth: Cut-off frequency (Hz) of the generated input.
        u: Optional input samples (V) on the grid, shape ``(n,)``, finite.
        noise_std: Standard deviation (V) of the measurement noise, >= 0.
        jitter: Amplitude of the time-stamp jitter, as a fraction of ``dt``,
            in ``[0, 1)``.
        drop: Fraction of the samples to remove, in ``[0, 1)``.
        seed: Anything :func:`numpy.random.default_rng` accepts.

    Returns:
        DataFrame with float64 columns ``T`` (s), ``in`` (V), ``out`` (V);
        see :func:`linear_rlc`.

    Raises:
        ValueError: If an argument is out of its range; the message names it.
    """
    _check_positive(L0=L0)

    def inductance(i_l: float) -> float:
        return L0 * (0.9 * (math.atan(-5.0 * (abs(i_l) - 5.0)) / math.pi + 0.5) + 0.1)

    return _series_rlc_dataset(
        n=n,
        dt=dt,
        R=R,
        C=C,
        inductance=inductance,
        input_std=input_std,
        bandwidth=bandwidth,
        u=u,
        noise_std=noise_std,
        jitter=jitter,
        drop=drop,
        seed=seed,
    )


def rlc_step_response(
    t: np.ndarray | float,
    *,
    V: float = 1.0,
    R: float = 3.0,
    L: float = 50e-6,
    C: float = 270e-9,
) -> np.ndarray:
    """Closed-form capacitor voltage of a series RLC circuit after a step.

    A step of height ``V`` (volts) is applied at ``t = 0`` to the circuit at
    rest. With ``alpha = R / (2L)`` and ``w0 = 1 / sqrt(L C)``:

    * underdamped (``alpha < w0``), ``wd = sqrt(w0**2 - alpha**2)``::

        v_C(t) = V * (1 - exp(-alpha t) * (cos(wd t) + alpha / wd * sin(wd t)))

    * critically damped (``alpha == w0``)::

        v_C(t) = V * (1 - exp(-alpha t) * (1 + alpha t))

    * overdamped (``alpha > w0``), ``s1,2 = -alpha +- sqrt(alpha**2 - w0**2)``::

        v_C(t) = V * (1 - (s2 exp(s1 t) - s1 exp(s2 t)) / (s2 - s1))

    Args:
        t: Times in seconds, >= 0, any shape.
        V: Step height in volts.
        R: Resistance in ohms, > 0.
        L: Inductance in henries, > 0.
        C: Capacitance in farads, > 0.

    Returns:
        Capacitor voltage in volts, float64 array of the shape of ``t``.

    Raises:
        ValueError: If a parameter is not positive or a time is negative.
    """
    _check_positive(R=R, L=L, C=C)
    t = np.asarray(t, dtype=float)
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("t must contain finite times >= 0")

    alpha = R / (2.0 * L)
    w0 = 1.0 / math.sqrt(L * C)
    # Within this relative distance of critical damping the overdamped formula
    # loses digits to cancellation, while the critical one is exact to ~1e-12.
    if abs(alpha - w0) <= 1e-6 * w0:
        decay = np.exp(-alpha * t) * (1.0 + alpha * t)
    elif alpha < w0:
        wd = math.sqrt(w0**2 - alpha**2)
        decay = np.exp(-alpha * t) * (np.cos(wd * t) + alpha / wd * np.sin(wd * t))
    else:
        root = math.sqrt(alpha**2 - w0**2)
        s1, s2 = -alpha + root, -alpha - root
        decay = (s2 * np.exp(s1 * t) - s1 * np.exp(s2 * t)) / (s2 - s1)
    return V * (1.0 - decay)


def _series_rlc_dataset(
    *,
    n: int,
    dt: float,
    R: float,
    C: float,
    inductance: Callable[[float], float],
    input_std: float,
    bandwidth: float,
    u: np.ndarray | None,
    noise_std: float,
    jitter: float,
    drop: float,
    seed: int | np.random.Generator | None,
) -> pd.DataFrame:
    """Input generation, sampling and noise shared by the RLC generators."""
    _check_n(n)
    _check_positive(dt=dt, R=R, C=C)
    _check_unit_fraction(jitter=jitter, drop=drop)
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")

    rng = np.random.default_rng(seed)
    if u is None:
        if not input_std >= 0:
            raise ValueError(f"input_std must be >= 0, got {input_std!r}")
        u = filtered_noise(n, dt=dt, std=input_std, bandwidth=bandwidth, seed=rng)
    else:
        u = np.asarray(u, dtype=float)
        if u.shape != (n,):
            raise ValueError(f"u must have shape (n,) = ({n},), got {u.shape}")
        if not np.all(np.isfinite(u)):
            raise ValueError("u must contain only finite values")

    jitter_offsets = rng.uniform(-0.5, 0.5, size=n)
    drop_priority = rng.random(n - 2)
    measurement_noise = rng.standard_normal(n)

    t_grid = np.arange(n) * dt
    # Neighbouring stamps stay at least (1 - jitter) * dt apart, so clipping
    # the two end stamps onto the grid range keeps T strictly increasing.
    t = np.clip(t_grid + jitter * dt * jitter_offsets, 0.0, t_grid[-1])
    keep = np.ones(n, dtype=bool)
    n_drop = round(drop * (n - 2))
    keep[1 + np.argsort(drop_priority)[:n_drop]] = False
    t = t[keep]

    v_in = np.interp(t, t_grid, u)
    v_out = _capacitor_voltage(u, dt, t, R=R, C=C, inductance=inductance)
    v_out = v_out + noise_std * measurement_noise[keep]
    return pd.DataFrame({"T": t, "in": v_in, "out": v_out})


def _capacitor_voltage(
    u: np.ndarray,
    dt: float,
    t_out: np.ndarray,
    *,
    R: float,
    C: float,
    inductance: Callable[[float], float],
) -> np.ndarray:
    """Integrate the series RLC circuit from rest; return ``v_C`` at ``t_out``.

    The input is the linear interpolation of the samples ``u`` taken at
    ``k * dt``. The time axis is cut at every grid point and every output
    stamp, and each piece is integrated separately with the adaptive
    8th-order Dormand-Prince method, so that no step straddles a kink of the
    input.

    The compiled DOP853 of ``scipy.integrate.ode`` is used rather than
    ``solve_ivp(method="DOP853", max_step=dt)``: the latter lets steps
    straddle the kinks, which its error control then resolves with tiny
    steps, and with its per-step Python overhead it took 53 s for the default
    10,000-sample nonlinear circuit, against about 3 s for this function.
    """
    t_grid = np.arange(len(u)) * dt
    breakpoints = np.union1d(t_grid, t_out)
    piece_start = breakpoints[:-1]
    grid_interval = np.searchsorted(t_grid, piece_start, side="right") - 1
    # Python floats, not NumPy scalars: the right-hand side is evaluated about
    # a million times for 10,000 samples and float arithmetic is much faster.
    input_slope = (np.diff(u) / dt)[grid_interval].tolist()
    input_at_start = np.interp(piece_start, t_grid, u).tolist()
    piece_start = piece_start.tolist()

    def rhs(t, x, t_start, v_start, slope):
        v_c, i_l = x.tolist()
        v_in = v_start + slope * (t - t_start)
        return (i_l / C, (v_in - R * i_l - v_c) / inductance(i_l))

    input_scale = float(np.max(np.abs(u))) or 1.0
    solver = ode(rhs).set_integrator(
        "dop853", rtol=_RTOL, atol=_ATOL_PER_INPUT_VOLT * input_scale, nsteps=100_000
    )
    solver.set_initial_value([0.0, 0.0], 0.0)
    v_c = np.zeros(len(breakpoints))
    for j, t_end in enumerate(breakpoints[1:]):
        params = (piece_start[j], input_at_start[j], input_slope[j])
        length = t_end - piece_start[j]
        if length < 1e-6 * dt:
            # DOP853 fails on pieces a few ulp long (a stamp right next to a
            # grid point). One Euler step has a relative error of about
            # (length / tau)^2, negligible unless the circuit's time constants
            # tau are a million times shorter than dt.
            state = solver.y + length * np.array(rhs(piece_start[j], solver.y, *params))
            solver.set_initial_value(state, t_end)
        else:
            solver.set_f_params(*params)
            solver.integrate(t_end)
            if not solver.successful():
                raise RuntimeError(f"the ODE solver failed at t = {piece_start[j]:g} s")
        v_c[j + 1] = solver.y[0]
    return v_c[np.searchsorted(breakpoints, t_out)]


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_unit_fraction(**values: float) -> None:
    for name, value in values.items():
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
