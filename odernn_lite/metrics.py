"""Fit metrics of a simulated or predicted output ``ŷ`` against the measured ``y``.

All take tensors or arrays of shape ``(n,)`` or ``(n, channels)`` (time first) and return one value per
channel as a float (one channel) or a 1-D tensor. They are the standard system-identification scores:

* RMSE  ``sqrt(mean((y − ŷ)²))``, in the unit of ``y``;
* NRMSE ``RMSE / std(y)``;
* FIT   ``100 · (1 − ‖y − ŷ‖ / ‖y − ȳ‖)`` percent (MATLAB's ``compare``; 100 is perfect, 0 is the mean);
* R²    ``1 − Σ(y − ŷ)² / Σ(y − ȳ)²``.
"""

from __future__ import annotations

import torch

__all__ = ["rmse", "nrmse", "fit", "r2"]


def _prepare(y, y_hat):
    y = torch.as_tensor(y, dtype=torch.float64)
    y_hat = torch.as_tensor(y_hat, dtype=torch.float64)
    if y.shape != y_hat.shape:
        raise ValueError(f"y has shape {tuple(y.shape)} but y_hat has {tuple(y_hat.shape)}")
    if y.shape[0] < 2:
        raise ValueError("metrics need at least 2 samples")
    return y, y_hat


def _out(x: torch.Tensor):
    return float(x) if x.dim() == 0 or x.numel() == 1 else x


def rmse(y, y_hat):
    """Root-mean-square error, per channel."""
    y, y_hat = _prepare(y, y_hat)
    return _out(((y - y_hat) ** 2).mean(dim=0).sqrt())


def nrmse(y, y_hat):
    """RMSE divided by the (population) standard deviation of ``y``, per channel."""
    y, y_hat = _prepare(y, y_hat)
    return _out(((y - y_hat) ** 2).mean(dim=0).sqrt() / y.std(dim=0, correction=0))


def fit(y, y_hat):
    """FIT percentage ``100·(1 − ‖y − ŷ‖/‖y − ȳ‖)``, per channel."""
    y, y_hat = _prepare(y, y_hat)
    return _out(100 * (1 - torch.linalg.vector_norm(y - y_hat, dim=0) / torch.linalg.vector_norm(y - y.mean(dim=0), dim=0)))


def r2(y, y_hat):
    """Coefficient of determination ``1 − SS_res/SS_tot``, per channel."""
    y, y_hat = _prepare(y, y_hat)
    return _out(1 - ((y - y_hat) ** 2).sum(dim=0) / ((y - y.mean(dim=0)) ** 2).sum(dim=0))
