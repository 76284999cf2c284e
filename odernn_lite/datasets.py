"""Public benchmark records, loaded with the official ``nonlinear-benchmarks`` loader.

The loader keeps its files in a cache folder: the one named by the ``ODERNN_BENCHMARKS_DIR``
environment variable, else the loader's own default (``~/.nonlinear_benchmarks``). When the files
are not in the cache, the loader downloads them (from data.4tu.nl); with no network and no local
copy, :func:`cascaded_tanks` raises :class:`DataUnavailable` saying where it looked.

The tests and the book set ``ODERNN_BENCHMARKS_DIR`` to the offline copy in
``../shared/data/nonlinear_benchmarks_cache``, so nothing is downloaded while they run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .data import Record

__all__ = ["cascaded_tanks", "DataUnavailable", "ENV_VAR"]

ENV_VAR = "ODERNN_BENCHMARKS_DIR"


class DataUnavailable(RuntimeError):
    """The benchmark's files are neither in the cache folder nor downloadable."""


def _cache_dir(cache: str | os.PathLike | None) -> Path | None:
    if cache is None:
        cache = os.environ.get(ENV_VAR, "").strip() or None
    return None if cache is None else Path(cache).expanduser().resolve()


def cascaded_tanks(cache: str | os.PathLike | None = None) -> tuple[Record, Record]:
    """The Cascaded Tanks benchmark (Schoukens et al. 2016): a pump voltage fills an upper tank that
    drains into a lower one; the output is the lower tank's water level, read by an uncalibrated
    capacitive sensor that saturates at 10 V when the tank overflows.

    Args:
        cache: the loader's cache folder (default: ``$ODERNN_BENCHMARKS_DIR``, else the loader's
            default). It must hold ``Cascaded_Tanks/CascadedTanksFiles/dataBenchmark.mat`` beside
            a ``Cascaded_Tanks/CascadedTanksFiles.zip`` (an empty placeholder will do), or be
            writable and online.

    Returns:
        ``(estimation, test)`` records of 1024 samples each, in seconds and volts: ``t_k = 4 k``
        (``Ts = 4 s``), input ``u`` (pump voltage), output ``y`` (water level). The benchmark
        scores the free-run simulation of ``test``; the loader's convention leaves its first 50
        samples for initialising the state.

    Raises:
        DataUnavailable: the files are not in the cache and could not be downloaded.
    """
    import nonlinear_benchmarks as nb

    folder = _cache_dir(cache)
    where = f"{folder}" if folder is not None else "the loader's default folder ~/.nonlinear_benchmarks"
    if folder is not None and not folder.is_dir():
        raise DataUnavailable(f"Cascaded Tanks: the cache folder {folder} (from {'cache=' if cache else ENV_VAR}) "
                              "does not exist")  # fmt: skip
    try:
        est, val = nb.Cascaded_Tanks(**({} if folder is None else {"dir_placement": str(folder)}))
    except Exception as e:  # the loader raises whatever urllib, gdown or scipy raise
        raise DataUnavailable(
            f"Cascaded Tanks: not found in {where} and the download failed ({type(e).__name__}: {e}). "
            f"Set {ENV_VAR} to a folder holding Cascaded_Tanks/CascadedTanksFiles/dataBenchmark.mat "
            "(see ../shared/data/README.md), or run once with internet access."
        ) from e
    ts = float(est.sampling_time)  # stored as numpy.uint8(4): cast before any arithmetic

    def record(data, name):
        u, y = np.asarray(data.u, dtype=np.float64), np.asarray(data.y, dtype=np.float64)
        t = torch.arange(len(u), dtype=torch.float64) * ts
        return Record(t, torch.tensor(u, dtype=torch.float32)[:, None], torch.tensor(y, dtype=torch.float32)[:, None],
                      input_names=("u",), output_names=("y",), time_name="t",
                      source=f"Cascaded Tanks ({name})")  # fmt: skip

    return record(est, "estimation"), record(val, "test")
