"""Continuous-time input u(t) from samples: interpolation that an ODE solver can query at any time.

A sampled input ``u_k = u(t_k)`` must be turned into a function of continuous time before a vector
field ``dh/dt = f(h, u(t))`` can be integrated: adaptive solvers evaluate ``f`` between the samples.
Every kind here is piecewise polynomial, ``u(t) = a_i + b_i s + c_i s² + d_i s³`` with
``s = t − t_i`` on ``[t_i, t_{i+1})``, passes exactly through the samples, and is differentiable
with respect to the sample values. Outside ``[t_0, t_{n−1}]`` the input is held at its end value.

=========  ===========================================================  =========================
kind       between two samples                                          reproduces exactly
=========  ===========================================================  =========================
``zoh``    the left sample (zero-order hold, as a DAC outputs it)        constants
``linear`` the straight line (first-order hold)                          polynomials of degree 1
``hermite`` cubic Hermite with three-point slope estimates               polynomials of degree 2
``natural`` natural cubic spline (C², zero curvature at both ends)       polynomials of degree 1
=========  ===========================================================  =========================

The natural spline is the smoothest interpolant but its end condition ``u'' = 0`` is wrong for a
curved signal, so near the ends it reproduces only straight lines exactly; the Hermite kind uses
local slopes, ``u'(t_i)`` from the parabola through three neighbouring samples.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Interpolation", "KINDS", "interpolate"]

KINDS = ("zoh", "linear", "hermite", "natural")


def _slopes_three_point(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Derivative at every knot of the parabola through the knot and its two neighbours.

    Args:
        t: knots ``(batch, n)``, float64; ``n ≥ 3``.
        u: values ``(batch, n, c)``.
    Returns:
        slopes ``(batch, n, c)``.
    """
    h = torch.diff(t, dim=1).to(u.dtype).unsqueeze(-1)  # (batch, n-1, 1)
    delta = torch.diff(u, dim=1) / h  # secant slopes
    h0, h1 = h[:, :-1], h[:, 1:]
    d0, d1 = delta[:, :-1], delta[:, 1:]
    interior = (h1 * d0 + h0 * d1) / (h0 + h1)
    # One-sided three-point formulas at the two ends.
    first = ((2 * h[:, :1] + h[:, 1:2]) * delta[:, :1] - h[:, :1] * delta[:, 1:2]) / (h[:, :1] + h[:, 1:2])
    last = ((2 * h[:, -1:] + h[:, -2:-1]) * delta[:, -1:] - h[:, -1:] * delta[:, -2:-1]) / (h[:, -1:] + h[:, -2:-1])
    return torch.cat([first, interior, last], dim=1)


def _second_derivatives_natural(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Second derivatives ``M_i`` of the natural cubic spline (``M_0 = M_{n−1} = 0``).

    Solves the tridiagonal system ``h_{i−1} M_{i−1} + 2(h_{i−1}+h_i) M_i + h_i M_{i+1} = 6(δ_i − δ_{i−1})``
    with the Thomas algorithm, batched over windows and channels.
    """
    h = torch.diff(t, dim=1).to(u.dtype).unsqueeze(-1)
    delta = torch.diff(u, dim=1) / h
    n = u.shape[1]
    M = torch.zeros_like(u)
    if n < 3:
        return M
    a = h[:, :-1]  # sub-diagonal, (batch, n-2, 1)
    b = 2 * (h[:, :-1] + h[:, 1:])
    c = h[:, 1:]
    rhs = 6 * (delta[:, 1:] - delta[:, :-1])
    cp, dp = [], []
    for i in range(n - 2):  # forward sweep
        denom = b[:, i] - (a[:, i] * cp[-1] if i else 0)
        cp.append(c[:, i] / denom)
        dp.append((rhs[:, i] - (a[:, i] * dp[-1] if i else 0)) / denom)
    interior = [dp[-1]]
    for i in range(n - 4, -1, -1):  # back substitution
        interior.append(dp[i] - cp[i] * interior[-1])
    M = torch.cat([torch.zeros_like(u[:, :1]), torch.stack(interior[::-1], dim=1), torch.zeros_like(u[:, :1])], dim=1)
    return M


class Interpolation(nn.Module):
    """A batched, piecewise-polynomial input ``u(t)`` through sampled values.

    Piece ``i`` holds the coefficients ``(a, b, c, d)`` of ``u`` on ``[t_i, t_{i+1})``; the last
    piece is the constant ``u_{n−1}``, used from the last knot on.

    Args:
        t: sample times, shape ``(n,)`` (shared by the batch) or ``(batch, n)``, strictly increasing.
            Kept in float64 so that long records with small steps stay exact.
        u: sample values, shape ``(batch, n, channels)``.
        kind: one of :data:`KINDS`.

    Calling the module with a time ``t`` of shape ``()`` returns ``(batch, channels)``; with times of
    shape ``(m,)`` it returns ``(batch, m, channels)``.
    """

    def __init__(self, t: torch.Tensor, u: torch.Tensor, *, kind: str = "linear"):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown interpolation kind {kind!r}; valid kinds are {list(KINDS)}")
        if u.dim() != 3:
            raise ValueError(f"u must have shape (batch, n, channels), got {tuple(u.shape)}")
        t = torch.as_tensor(t, dtype=torch.float64, device=u.device)
        t = t.expand(u.shape[0], -1) if t.dim() == 1 else t
        if t.shape != u.shape[:2]:
            raise ValueError(f"times {tuple(t.shape)} do not match values {tuple(u.shape)}")
        n = t.shape[1]
        if n > 1 and not bool((torch.diff(t, dim=1) > 0).all()):
            raise ValueError("interpolation times must strictly increase")
        if kind in ("hermite", "natural") and n < 3:
            kind = "linear"  # a cubic through two points is the straight line
        self.kind = kind
        self.register_buffer("knots", t.contiguous())
        self.register_buffer("values", u)
        pieces = self._coefficients(t, u, kind) if n > 1 else u.new_zeros(u.shape[0], 0, u.shape[2], 4)
        # One more piece, the constant last sample, from the last knot on (it makes zoh exact there).
        last = torch.stack([u[:, -1:], *(torch.zeros_like(u[:, -1:]),) * 3], dim=-1)
        self.register_buffer("coeffs", torch.cat([pieces, last], dim=1))  # (batch, n, channels, 4)
        # Windows cut from a regular record share their knots up to rounding: then one row of
        # knots serves the whole batch, and a solver's query costs one search instead of `batch`.
        span = float((t[:, -1] - t[:, 0]).abs().max())
        shared = bool((t - t[:1]).abs().max() <= 1e-9 * max(span, 1.0))
        self.register_buffer("grid", t[0].contiguous() if shared else None)

    @staticmethod
    def _coefficients(t, u, kind):
        zeros = torch.zeros_like(u[:, :-1])
        a = u[:, :-1]
        if kind == "zoh":
            return torch.stack([a, zeros, zeros, zeros], dim=-1)
        h = torch.diff(t, dim=1).to(u.dtype).unsqueeze(-1)
        delta = torch.diff(u, dim=1) / h
        if kind == "linear":
            return torch.stack([a, delta, zeros, zeros], dim=-1)
        if kind == "hermite":
            m = _slopes_three_point(t, u)
            m0, m1 = m[:, :-1], m[:, 1:]
            c = (3 * delta - 2 * m0 - m1) / h
            d = (m0 + m1 - 2 * delta) / h**2
            return torch.stack([a, m0, c, d], dim=-1)
        M = _second_derivatives_natural(t, u)
        M0, M1 = M[:, :-1], M[:, 1:]
        b = delta - h * (2 * M0 + M1) / 6
        return torch.stack([a, b, M0 / 2, (M1 - M0) / (6 * h)], dim=-1)

    @property
    def batch(self) -> int:
        return self.values.shape[0]

    def forward(self, t: torch.Tensor | float) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64, device=self.knots.device)
        scalar = t.dim() == 0
        if self.grid is not None:
            tq = torch.clamp(t.reshape(-1), self.grid[0], self.grid[-1])  # (m,)
            idx = (torch.searchsorted(self.grid, tq, right=True) - 1).clamp(min=0)
            s = (tq - self.grid[idx]).to(self.values.dtype)[None, :, None]  # (1, m, 1)
            a, b, c, d = self.coeffs.index_select(1, idx).unbind(-1)  # each (batch, m, channels)
            out = a + s * (b + s * (c + s * d))
            return out[:, 0] if scalar else out
        tq = t.reshape(1, -1).expand(self.batch, -1)  # (batch, m)
        tq = torch.minimum(torch.maximum(tq, self.knots[:, :1]), self.knots[:, -1:])
        idx = (torch.searchsorted(self.knots, tq.contiguous(), right=True) - 1).clamp(min=0)
        s = (tq - torch.gather(self.knots, 1, idx)).to(self.values.dtype).unsqueeze(-1)  # (batch, m, 1)
        gather_idx = idx[:, :, None, None].expand(-1, -1, *self.coeffs.shape[2:])
        a, b, c, d = torch.gather(self.coeffs, 1, gather_idx).unbind(-1)  # each (batch, m, channels)
        out = a + s * (b + s * (c + s * d))
        return out[:, 0] if scalar else out


def interpolate(t: torch.Tensor, u: torch.Tensor, kind: str = "linear") -> Interpolation:
    """Shorthand for :class:`Interpolation` ``(t, u, kind=kind)``."""
    return Interpolation(t, u, kind=kind)
