"""Which device to compute on: ``ODERNN_DEVICE`` if set, else ``cuda`` when available, else ``cpu``."""

from __future__ import annotations

import os

import torch

__all__ = ["default_device", "ENV_VAR"]

ENV_VAR = "ODERNN_DEVICE"


def default_device() -> torch.device:
    """The device named by the ``ODERNN_DEVICE`` environment variable (e.g. ``cpu``, ``cuda``,
    ``cuda:1``), or ``cuda`` when a GPU is available, else ``cpu``."""
    name = os.environ.get(ENV_VAR, "").strip()
    if name:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ValueError(f"{ENV_VAR}={name!r} is not a device name (try 'cpu' or 'cuda')") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{ENV_VAR}={name!r} but no CUDA GPU is available; set {ENV_VAR}=cpu")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
