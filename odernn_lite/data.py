"""Records of an input→output system, read from CSV files or DataFrames, and cut into windows.

A :class:`Record` holds one long measurement ``t, u, y``: time stamps kept in float64 (so that
microsecond steps on a long record stay exact) and input/output values in float32. Everything that
reads a file checks it and says what is wrong, naming the file, the line and the column: nothing is
silently dropped, filled in or reordered.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["Record", "Stats", "Windows", "TIME_UNITS", "load_csv", "from_dataframe", "windows", "split"]

#: Seconds per unit for the ``time_unit`` argument.
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

# Sampling counts as regular when the spread of the steps is below this fraction of the median
# step: CSV files store times as rounded decimals, so exact equality is too strict.
_REGULAR_RTOL = 1e-4


@dataclasses.dataclass(frozen=True)
class Stats:
    """Means and standard deviations used to standardise a record.

    Attributes:
        u_mean, u_std: shape ``(n_in,)``.
        y_mean, y_std: shape ``(n_out,)``.
    """

    u_mean: torch.Tensor
    u_std: torch.Tensor
    y_mean: torch.Tensor
    y_std: torch.Tensor

    def scale_u(self, u: torch.Tensor) -> torch.Tensor:
        """``(u − u_mean) / u_std`` for ``u`` of shape ``(..., n_in)``."""
        return (u - self.u_mean.to(u)) / self.u_std.to(u)

    def scale_y(self, y: torch.Tensor) -> torch.Tensor:
        """``(y − y_mean) / y_std`` for ``y`` of shape ``(..., n_out)``."""
        return (y - self.y_mean.to(y)) / self.y_std.to(y)

    def unscale_y(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`scale_y`."""
        return y * self.y_std.to(y) + self.y_mean.to(y)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, for checkpoints and JSON."""
        return {k: getattr(self, k).tolist() for k in ("u_mean", "u_std", "y_mean", "y_std")}

    @classmethod
    def from_dict(cls, d: dict) -> Stats:
        return cls(**{k: torch.tensor(d[k], dtype=torch.float32) for k in ("u_mean", "u_std", "y_mean", "y_std")})


@dataclasses.dataclass(frozen=True)
class Record:
    """One input→output record.

    Attributes:
        t: time stamps, shape ``(n,)``, float64, strictly increasing, in units of
            ``time_scale`` seconds (1.0 after loading: seconds).
        u: input, shape ``(n, n_in)``, float32.
        y: output, shape ``(n, n_out)``, float32.
        input_names, output_names: column names of ``u`` and ``y``.
        time_name: column name of ``t``.
        source: the file the record came from, or a description.
        time_scale: seconds per unit of ``t``.
    """

    t: torch.Tensor
    u: torch.Tensor
    y: torch.Tensor
    input_names: tuple[str, ...] = ("in",)
    output_names: tuple[str, ...] = ("out",)
    time_name: str = "T"
    source: str = "<record>"
    time_scale: float = 1.0

    def __post_init__(self):
        n = self.t.shape[0]
        if self.t.dim() != 1 or self.u.shape[0] != n or self.y.shape[0] != n or self.u.dim() != 2 or self.y.dim() != 2:
            raise ValueError(
                f"{self.source}: inconsistent shapes t{tuple(self.t.shape)}, u{tuple(self.u.shape)}, "
                f"y{tuple(self.y.shape)}; expected (n,), (n, n_in), (n, n_out)"
            )

    def __len__(self) -> int:
        return self.t.shape[0]

    def __getitem__(self, index: slice) -> Record:
        """A contiguous piece of the record, e.g. ``record[100:200]``."""
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("a Record can only be sliced with a contiguous slice, e.g. record[100:200]")
        return dataclasses.replace(self, t=self.t[index], u=self.u[index], y=self.y[index])

    def to(self, device: torch.device | str) -> Record:
        """The same record with its tensors on ``device`` (time stays float64)."""
        return dataclasses.replace(self, t=self.t.to(device), u=self.u.to(device), y=self.y.to(device))

    # --- sampling -------------------------------------------------------------------------------
    @property
    def dt(self) -> torch.Tensor:
        """The ``n − 1`` sample periods, float64."""
        return torch.diff(self.t)

    @property
    def dt_median(self) -> float:
        return float(torch.median(self.dt)) if len(self) > 1 else math.nan

    @property
    def dt_min(self) -> float:
        return float(self.dt.min()) if len(self) > 1 else math.nan

    @property
    def dt_max(self) -> float:
        return float(self.dt.max()) if len(self) > 1 else math.nan

    @property
    def is_regular(self) -> bool:
        """True when all sample periods equal the median up to rounding in the file."""
        return len(self) > 1 and (self.dt_max - self.dt_min) <= _REGULAR_RTOL * self.dt_median

    def in_sample_units(self, period: float | None = None) -> Record:
        """The same record with time measured in sample periods: ``t / period``.

        Args:
            period: the unit, in the record's current time unit; default the median sample period,
                so that a regular record gets ``t_k = t_0/Δt + k``.
        """
        period = self.dt_median if period is None else float(period)
        if not period > 0:
            raise ValueError(f"{self.source}: the time unit must be positive, got {period}")
        return dataclasses.replace(self, t=self.t / period, time_scale=self.time_scale * period)

    # --- standardisation ------------------------------------------------------------------------
    def stats(self) -> Stats:
        """Per-channel means and standard deviations of ``u`` and ``y`` (a zero std becomes 1)."""

        def moments(x):
            std = x.std(dim=0)
            return x.mean(dim=0), torch.where(std > 0, std, torch.ones_like(std))

        u_mean, u_std = moments(self.u)
        y_mean, y_std = moments(self.y)
        return Stats(u_mean, u_std, y_mean, y_std)

    def standardized(self, stats: Stats | None = None) -> Record:
        """``u`` and ``y`` standardised with ``stats`` (default: this record's own)."""
        stats = self.stats() if stats is None else stats
        return dataclasses.replace(self, u=stats.scale_u(self.u), y=stats.scale_y(self.y))

    def summary(self) -> dict:
        """What ``odernn-lite check`` prints: rows, time span, sampling, value ranges."""
        out = {
            "source": self.source,
            "rows": len(self),
            "time span": float(self.t[-1] - self.t[0]) if len(self) else 0.0,
            "dt median": self.dt_median,
            "dt min": self.dt_min,
            "dt max": self.dt_max,
            "sampling": "regular" if self.is_regular else "irregular",
        }
        for names, values in ((self.input_names, self.u), (self.output_names, self.y)):
            for j, name in enumerate(names):
                out[f"{name} range"] = (float(values[:, j].min()), float(values[:, j].max()))
        return out

    def to_dataframe(self) -> pd.DataFrame:
        """Back to a DataFrame with the original column names (time in the record's unit)."""
        cols = {self.time_name: self.t.numpy()}
        cols.update({n: self.u[:, j].numpy() for j, n in enumerate(self.input_names)})
        cols.update({n: self.y[:, j].numpy() for j, n in enumerate(self.output_names)})
        return pd.DataFrame(cols)


# --- reading ------------------------------------------------------------------------------------
def _names(arg: str | Sequence[str]) -> tuple[str, ...]:
    return (arg,) if isinstance(arg, str) else tuple(arg)


def _time_factor(time_unit: str, where: str) -> float:
    if time_unit not in TIME_UNITS:
        raise ValueError(f"{where}: unknown time_unit {time_unit!r}; valid units are {sorted(TIME_UNITS)}")
    return TIME_UNITS[time_unit]


def _build(columns: dict[str, np.ndarray], lines: np.ndarray, *, time, input, output, time_unit, where) -> Record:
    """Check the parsed columns (finite values, increasing time) and assemble a Record.

    ``lines[i]`` is the line number (or row label) of row ``i`` used in messages.
    """
    factor = _time_factor(time_unit, where)
    time_col, input_cols, output_cols = time, _names(input), _names(output)
    for name in (time_col, *input_cols, *output_cols):
        bad = ~np.isfinite(columns[name])
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{where}: {lines[i]}, column {name!r}: value is {float(columns[name][i])} (not finite)")
    t = columns[time_col]
    if len(t) == 0:
        raise ValueError(f"{where}: no data rows (header only)")
    steps = np.diff(t)
    if (steps <= 0).any():
        i = int(np.argmax(steps <= 0)) + 1
        kind = "repeats" if steps[i - 1] == 0 else "goes back from"
        raise ValueError(
            f"{where}: {lines[i]}, column {time_col!r}: time {float(t[i])!r} {kind} the previous time {float(t[i - 1])!r} "
            f"({lines[i - 1]}); time must strictly increase (sort the file or remove the duplicate)"
        )
    return Record(
        t=torch.tensor(t * factor, dtype=torch.float64),
        u=torch.tensor(np.stack([columns[c] for c in input_cols], axis=1), dtype=torch.float32),
        y=torch.tensor(np.stack([columns[c] for c in output_cols], axis=1), dtype=torch.float32),
        input_names=input_cols,
        output_names=output_cols,
        time_name=time_col,
        source=where,
    )


def _check_columns(available: Sequence[str], wanted: Sequence[str], where: str) -> None:
    for role, name in wanted:
        if name not in available:
            raise ValueError(f"{where}: {role} column {name!r} not found; the columns are {list(available)}")


def load_csv(
    path: str | Path,
    *,
    time: str = "T",
    input: str | Sequence[str] = "in",
    output: str | Sequence[str] = "out",
    time_unit: str = "s",
    delimiter: str = ",",
) -> Record:
    """Read a ``time, input, output`` CSV file into a :class:`Record`.

    The file needs a header row. Other columns are allowed and ignored. Every row must have as many
    fields as the header; every used cell must be a finite number; time must strictly increase.

    Args:
        path: the CSV file.
        time: name of the time column.
        input: name (or names) of the input column(s).
        output: name (or names) of the output column(s).
        time_unit: unit of the time column, one of :data:`TIME_UNITS`; the record is in seconds.
        delimiter: field separator.

    Returns:
        The record, with ``t`` in seconds, shape ``(n,)``; ``u`` ``(n, n_in)``; ``y`` ``(n, n_out)``.

    Raises:
        ValueError: naming the file, line and column of the first problem found.
    """
    where = str(path)
    _time_factor(time_unit, where)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
    except FileNotFoundError:
        raise ValueError(f"{where}: file not found") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{where}: not a text file ({e.reason})") from None
    except OSError as e:
        raise ValueError(f"{where}: cannot be read ({e.strerror or e})") from None
    except (csv.Error, TypeError) as e:
        raise ValueError(f"{where}: not a valid CSV file with delimiter {delimiter!r} ({e})") from None
    # Blank lines carry no data; keep the true line numbers of the others for messages.
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(cell.strip() for cell in r)]
    if not numbered:
        raise ValueError(f"{where}: the file is empty")
    _, header = numbered[0]
    header = [h.strip() for h in header]
    wanted = [("time", time)] + [("input", c) for c in _names(input)] + [("output", c) for c in _names(output)]
    if len(header) == 1:
        for other in (";", "\t", "|", " ", ","):
            if other != delimiter and other in header[0] and len(header[0].split(other)) > 1:
                raise ValueError(
                    f"{where}: line 1 has a single column {header[0]!r} with delimiter {delimiter!r}; "
                    f"the file looks {other!r}-delimited: pass delimiter={other!r} (--delimiter on the command line)"
                )
    _check_columns(header, wanted, where)
    data = numbered[1:]
    if not data:
        raise ValueError(f"{where}: header only, no data rows")
    for line, r in data:
        if len(r) != len(header):
            raise ValueError(f"{where}: line {line} has {len(r)} fields but the header has {len(header)} (ragged row)")
    lines = np.array([f"line {line}" for line, _ in data])
    columns = {}
    for _, name in wanted:
        j = header.index(name)
        values = np.empty(len(data))
        for i, (line, r) in enumerate(data):
            cell = r[j].strip()
            try:
                values[i] = float(cell)
            except ValueError:
                what = "is empty" if cell == "" else f"{cell!r} is not a number"
                raise ValueError(f"{where}: line {line}, column {name!r}: {what}") from None
        columns[name] = values
    return _build(columns, lines, time=time, input=input, output=output, time_unit=time_unit, where=where)


def from_dataframe(
    df: pd.DataFrame,
    *,
    time: str = "T",
    input: str | Sequence[str] = "in",
    output: str | Sequence[str] = "out",
    time_unit: str = "s",
    name: str = "<dataframe>",
) -> Record:
    """Build a :class:`Record` from a DataFrame, with the same checks as :func:`load_csv`.

    Messages name rows by their DataFrame index label.
    """
    where = name
    _time_factor(time_unit, where)
    wanted = [("time", time)] + [("input", c) for c in _names(input)] + [("output", c) for c in _names(output)]
    _check_columns([str(c) for c in df.columns], wanted, where)
    lines = np.array([f"row {label!r}" for label in df.index], dtype=object)
    columns = {}
    for _, col in wanted:
        numeric = pd.to_numeric(df[col], errors="coerce")
        bad = numeric.isna() & df[col].notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise ValueError(f"{where}: {lines[i]}, column {col!r}: {df[col].iloc[i]!r} is not a number")
        columns[col] = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    return _build(columns, lines, time=time, input=input, output=output, time_unit=time_unit, where=where)


# --- windows ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Windows:
    """A batch of equal-length windows cut from one record.

    Attributes:
        t: shape ``(batch, length)``, float64.
        u: shape ``(batch, length, n_in)``.
        y: shape ``(batch, length, n_out)``.
        start: shape ``(batch,)``, index of each window's first sample in the record.
        remainder: number of trailing samples that no window covers (0 unless reported).
    """

    t: torch.Tensor
    u: torch.Tensor
    y: torch.Tensor
    start: torch.Tensor
    remainder: int

    def __len__(self) -> int:
        return self.t.shape[0]


def windows(record: Record, length: int, *, stride: int | None = None, cover_end: bool = False) -> Windows:
    """Cut ``record`` into windows of ``length`` samples, the k-th starting at sample ``k·stride``.

    ``windows(r, len(r) // m)`` is the forum's ``reshape(m, -1)`` when ``m`` divides the length.
    When the windows do not reach the last sample, the uncovered tail is reported: in
    ``Windows.remainder`` and as a warning, or, with ``cover_end=True``, by adding one last
    window that ends at the final sample (it overlaps the one before).

    Args:
        record: the record to cut.
        length: samples per window (at least 2).
        stride: samples between window starts; default ``length`` (no overlap).
        cover_end: add a final window so that every sample is covered.

    Returns:
        :class:`Windows` with tensors of shape ``(batch, length, ·)``.
    """
    n = len(record)
    stride = length if stride is None else stride
    if length < 2 or stride < 1:
        raise ValueError(f"windows need length >= 2 and stride >= 1, got length={length}, stride={stride}")
    if n < length:
        raise ValueError(f"{record.source}: {n} rows are fewer than one window of {length} samples")
    starts = list(range(0, n - length + 1, stride))
    remainder = n - (starts[-1] + length)
    if remainder and cover_end:
        starts.append(n - length)
        remainder = 0
    elif remainder:
        warnings.warn(
            f"{record.source}: windows of {length} with stride {stride} leave the last {remainder} samples "
            "uncovered (Windows.remainder); pass cover_end=True to add a window that ends at the last sample",
            stacklevel=2,
        )
    start = torch.tensor(starts, dtype=torch.long)
    index = start[:, None] + torch.arange(length)
    return Windows(t=record.t[index], u=record.u[index], y=record.y[index], start=start, remainder=remainder)


def split(record: Record, val_fraction: float = 0.2) -> tuple[Record, Record]:
    """Time-ordered split: the first ``1 − val_fraction`` of the samples, then the rest."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = round(len(record) * (1 - val_fraction))
    if cut < 2 or len(record) - cut < 2:
        raise ValueError(f"{record.source}: {len(record)} rows are too few to split with val_fraction={val_fraction}")
    return record[:cut], record[cut:]
