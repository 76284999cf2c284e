"""The ``odernn-lite`` command line: ``check`` a CSV record, ``fit`` a model, ``simulate`` it.

::

    odernn-lite check DATA.csv
    odernn-lite fit DATA.csv --out MODEL.pt [--model neural-ss] [--max-seconds 120]
    odernn-lite simulate MODEL.pt DATA.csv --out PRED.csv

Exit status: 0 success; 2 bad input or usage (one line on stderr, ``odernn-lite: error: …``);
1 training diverged or an unexpected error (``--debug`` shows the traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
import warnings
from pathlib import Path

PROG = "odernn-lite"

# Defaults of the column options (``simulate`` takes them from the checkpoint instead).
COLUMN_DEFAULTS = {"time": "T", "input": "in", "output": "out", "time_unit": "s"}
MODEL_CHOICES = ("neural-ss", "ctrnn", "gruode", "linear")  # the names of odernn_lite.fields.FIELDS
DEFAULT_WINDOW = 50

__all__ = ["main", "build_parser"]


# --- argument types ---------------------------------------------------------------------------------
def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def _anneal_factor(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _delimiter(text: str) -> str:
    value = {"\\t": "\t", "tab": "\t", "TAB": "\t", "space": " "}.get(text, text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"must be a single character (or 'tab'), got {text!r}")
    return value


# --- the parser -------------------------------------------------------------------------------------
def _column_options(*, from_checkpoint: bool) -> argparse.ArgumentParser:
    """Parent parser with the options that say how to read the CSV file."""
    from .data import TIME_UNITS

    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("CSV columns")

    def default(key):
        return "as stored in the checkpoint" if from_checkpoint else f"{COLUMN_DEFAULTS[key]}"

    group.add_argument("--time-col", metavar="NAME", help=f"time column (default: {default('time')})")
    group.add_argument("--input-col", metavar="NAME", action="append",
                       help=f"input column; repeat for several inputs (default: {default('input')})")  # fmt: skip
    group.add_argument("--output-col", metavar="NAME", action="append",
                       help=f"output column; repeat for several outputs (default: {default('output')})")  # fmt: skip
    group.add_argument("--time-unit", choices=sorted(TIME_UNITS), help=f"unit of the time column (default: {default('time_unit')})")
    group.add_argument("--delimiter", type=_delimiter, default=",", metavar="CHAR", help="field separator; 'tab' for tabs (default: ,)")
    return parent


def _debug_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand that is not given --debug leaves the main parser's value alone.
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``odernn-lite`` (built on demand, never at import)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="ODE-RNNs for input→output system identification: check a CSV record, fit a model, simulate it.",
        epilog="Exit status: 0 success, 2 bad input or usage, 1 training diverged or unexpected error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", default=False, help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    debug = _debug_option()

    p = sub.add_parser("check", parents=[_column_options(from_checkpoint=False), debug],
                       help="load a CSV record and print what it holds",
                       description="Load a CSV record with the checks fit uses and print its summary.")  # fmt: skip
    p.add_argument("data", metavar="DATA.csv", help="the record: a header row, then time, input and output columns")

    p = sub.add_parser("fit", parents=[_column_options(from_checkpoint=False), debug],
                       help="train a model on a CSV record and save a checkpoint",
                       description="Train an ODE-RNN on the first part of a record with multiple shooting, "
                                   "validate it by free-run simulation of the rest, and save a checkpoint.")  # fmt: skip
    p.add_argument("data", metavar="DATA.csv", help="the training record")
    p.add_argument("--out", required=True, metavar="MODEL.pt", help="checkpoint to write")
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=MODEL_CHOICES, default="neural-ss", help="vector field (default: neural-ss)")
    g.add_argument("--state-size", type=_int_at_least(1), default=8, metavar="N", help="size of the hidden state (default: 8)")
    g.add_argument("--encoder-window", type=_int_at_least(0), default=10, metavar="N",
                   help="past samples from which the encoder estimates the initial state; 0: start from zero (default: 10)")  # fmt: skip
    g = p.add_argument_group("training")
    g.add_argument("--max-seconds", type=_positive_float, default=120.0, metavar="S", help="training time budget in seconds (default: 120)")
    g.add_argument("--iters", type=_int_at_least(1), default=None, metavar="N",
                   help="stop after N updates, or at the time budget if that comes first (default: the time budget only)")  # fmt: skip
    g.add_argument("--val-fraction", type=_fraction, default=0.2, metavar="F",
                   help="last fraction of the record kept for validation (default: 0.2)")  # fmt: skip
    g.add_argument("--window", type=_int_at_least(2), default=None, metavar="W",
                   help=f"simulated samples per training window (default: {DEFAULT_WINDOW}, shorter if the training part is too short)")  # fmt: skip
    g.add_argument("--batch-size", type=_int_at_least(1), default=128, metavar="B", help="windows per update (default: 128)")
    g.add_argument("--lr", type=_positive_float, default=1e-2, metavar="LR", help="Adam learning rate (default: 1e-2)")
    g.add_argument("--anneal", type=_anneal_factor, default=0.05, metavar="F",
                   help="lower the learning rate along a cosine to F times its start value by the end of the budget: "
                        "over --iters updates when given (the same on every machine), else over --max-seconds "
                        "(default: 0.05; 1 keeps it constant)")  # fmt: skip
    g.add_argument("--seed", type=int, default=0, metavar="N", help="random seed of the weights and the windows (default: 0)")

    p = sub.add_parser("simulate", parents=[_column_options(from_checkpoint=True), debug],
                       help="free-run a fitted model on a CSV record and write the prediction",
                       description="Free-run a model saved by fit over a record from its input alone (the first "
                                   "init-window samples, input and measured output, only set the initial state) "
                                   "and write a CSV with the time, <out>_pred and the measured <out>.")  # fmt: skip
    p.add_argument("checkpoint", metavar="MODEL.pt", help="checkpoint written by fit")
    p.add_argument("data", metavar="DATA.csv", help="the record to simulate")
    p.add_argument("--out", required=True, metavar="PRED.csv", help="prediction CSV to write")
    p.add_argument("--init-window", type=_int_at_least(0), default=None, metavar="N",
                   help="samples that set the initial state; must equal the model's encoder window (default: that window)")  # fmt: skip
    return parser


# --- helpers ----------------------------------------------------------------------------------------
def _names(value):
    """One name as a string (as load_csv prints it), several as a list."""
    if isinstance(value, (list, tuple)):
        return value[0] if len(value) == 1 else list(value)
    return value


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _columns(args, stored: dict | None = None) -> dict:
    """The column options: given on the command line, else stored in the checkpoint, else defaults."""
    base = dict(COLUMN_DEFAULTS)
    base.update({k: v for k, v in (stored or {}).items() if k in base and v is not None})
    given = {"time": args.time_col, "input": args.input_col, "output": args.output_col, "time_unit": args.time_unit}
    base.update({k: v for k, v in given.items() if v is not None})
    base["input"], base["output"] = _names(base["input"]), _names(base["output"])
    return base


def _load(path: str, cols: dict, delimiter: str, *, output=None):
    from .data import load_csv

    return load_csv(path, time=cols["time"], input=cols["input"], output=cols["output"] if output is None else output,
                    time_unit=cols["time_unit"], delimiter=delimiter)  # fmt: skip


def _header(path: str, delimiter: str) -> list[str] | None:
    """The header row of a CSV file as load_csv reads it, or None if it cannot be read (load_csv
    then reports the problem)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(f, delimiter=delimiter):
                if any(cell.strip() for cell in row):
                    return [cell.strip() for cell in row]
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


def _output_path(out: str, option: str = "--out") -> Path:
    """Check that ``out`` can be written before any work is done."""
    path = Path(out)
    parent = path.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {out}: the directory {str(parent)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"{option} {out} is a directory; give a file name")
    return path


def _fmt(value) -> str:
    if isinstance(value, bool) or isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)):
        return " .. ".join(_fmt(v) for v in value)
    return str(value)


def _say(*lines: str) -> None:
    """Print to stdout; if the reader went away (``| head``), carry on silently: a fit still saves."""
    for line in lines:
        try:
            print(line, flush=True)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so that the final flush at exit succeeds too
            os.close(devnull)
            return


def _file_times(t_seconds, time_unit: str):
    """Time stamps (seconds, float64) back in the unit of the file's time column."""
    import numpy as np

    from .data import TIME_UNITS

    factor = TIME_UNITS[time_unit]
    t = t_seconds.numpy() if hasattr(t_seconds, "numpy") else np.asarray(t_seconds)
    if factor == 1.0:
        return t
    # t·factor/factor is off by an ulp or so; 15 significant digits give back the file's decimals.
    return np.array([float(f"{x:.15g}") for x in t / factor])


# --- commands ---------------------------------------------------------------------------------------
def _cmd_check(args) -> int:
    cols = _columns(args)
    record = _load(args.data, cols, args.delimiter)
    seconds = {"time span", "dt median", "dt min", "dt max"}
    for key, value in record.summary().items():
        text = _fmt(value)
        if key in seconds and isinstance(value, float) and math.isfinite(value):
            text += " s"
        _say(f"{key}: {text}")
    return 0


def _cmd_fit(args) -> int:
    import torch

    from .data import split
    from .device import default_device
    from .models import ODEModel
    from .train import MultipleShootingTrainer, save_checkpoint, simulate

    out = _output_path(args.out)
    cols = _columns(args)
    record = _load(args.data, cols, args.delimiter)
    train, val = split(record, args.val_fraction)
    n_enc = args.encoder_window

    if args.window is not None:
        window, why = args.window, "--window"
    elif len(train) >= n_enc + DEFAULT_WINDOW:
        window, why = DEFAULT_WINDOW, "default"
    else:
        window = max(2, len(train) - n_enc - 1)
        why = f"the default {DEFAULT_WINDOW} does not fit in the {len(train)} training rows with encoder window {n_enc}"
    if len(train) < n_enc + window:
        raise ValueError(
            f"{args.data}: the training part ({len(train)} of {len(record)} rows) is shorter than one training "
            f"window of encoder window {n_enc} + window {window} samples; use a longer record, a smaller "
            "--window, --encoder-window or --val-fraction"
        )
    if len(val) < n_enc + 2:
        raise ValueError(
            f"{args.data}: the validation part ({len(val)} of {len(record)} rows) is shorter than encoder window "
            f"{n_enc} + 2 samples; use a longer record, a larger --val-fraction or a smaller --encoder-window"
        )

    device = default_device()
    torch.manual_seed(args.seed)
    model = ODEModel(args.model, args.state_size, record.u.shape[1], record.y.shape[1], encoder_window=n_enc).to(device)
    model.set_scaling(train)
    n_params = sum(p.numel() for p in model.parameters())
    budget = f"at most {args.max_seconds:g} s" + (f" or {args.iters} updates" if args.iters is not None else "")
    _say(
        f"data: {args.data}: {len(record)} rows, {len(train)} for training, {len(val)} for validation",
        f"model: {args.model}, state size {args.state_size}, encoder window {n_enc}, {n_params} parameters, on {device}",
        f"time unit: {float(model.time_scale):.6g} s (the median sample period)",
        f"window: {window} samples ({why})",
        f"training: batch size {args.batch_size}, lr {args.lr:g} annealed to {args.anneal:g}x, seed {args.seed}, {budget}",
    )

    trainer = MultipleShootingTrainer(model, window=window, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                      clip=10.0, anneal=args.anneal, progress=sys.stderr.isatty())  # fmt: skip
    start = time.perf_counter()
    history = trainer.fit(train, iters=args.iters, max_seconds=args.max_seconds)
    seconds = time.perf_counter() - start
    last_loss = float(history["loss"].iloc[-1]) if len(history) else math.nan
    _say(f"updates: {trainer.step}", f"training seconds: {seconds:.1f}", f"last training loss: {last_loss:.6g}")

    scores = simulate(model, val).scores()
    _say(
        f"validation RMSE: {scores['rmse']:.6g}",
        f"validation FIT: {scores['fit']:.2f} %",
        f"validation R2: {scores['r2']:.4f}",
    )
    columns = dict(time=cols["time"], input=cols["input"], output=cols["output"], time_unit=cols["time_unit"])
    save_checkpoint(out, model, trainer=trainer, columns=columns, validation=scores, cli_args=vars(args))
    _say(f"wrote {out}")
    return 0


def _cmd_simulate(args) -> int:
    import dataclasses

    import torch

    from .device import default_device
    from .train import load_checkpoint, simulate

    out = _output_path(args.out)
    model, ckpt = load_checkpoint(args.checkpoint)
    extra = ckpt.get("extra") or {}
    cols = _columns(args, extra.get("columns") if isinstance(extra, dict) else None)
    n = model.encoder_window if args.init_window is None else args.init_window
    if n != model.encoder_window:
        raise ValueError(
            f"{args.checkpoint}: --init-window {n} does not match the model's encoder window of "
            f"{model.encoder_window} samples (the encoder takes exactly that many); omit --init-window"
        )
    inputs, outputs = _as_list(cols["input"]), _as_list(cols["output"])
    if len(inputs) != model.input_size:
        raise ValueError(f"{args.checkpoint}: the model takes {model.input_size} input column(s), but {len(inputs)} "
                         f"are named ({inputs}); fix --input-col")  # fmt: skip
    if len(outputs) != model.output_size:
        raise ValueError(f"{args.checkpoint}: the model gives {model.output_size} output column(s), but {len(outputs)} "
                         f"are named ({outputs}); fix --output-col")  # fmt: skip

    header = _header(args.data, args.delimiter)
    missing = [c for c in outputs if header is not None and c not in header]
    measured = not missing
    if measured:
        record = _load(args.data, cols, args.delimiter)
    elif n > 0:
        raise ValueError(
            f"{args.data}: output column {missing[0]!r} not found (the columns are {header}); simulate needs the "
            f"measured output over the first {n} samples, from which the model's encoder sets the initial state "
            "(name the column with --output-col)"
        )
    else:  # no encoder: the output is not needed; read the input twice as a placeholder
        record = _load(args.data, cols, args.delimiter, output=[inputs[0]] * len(outputs))
        record = dataclasses.replace(record, y=torch.full_like(record.y, math.nan), output_names=tuple(outputs))

    model.to(default_device())
    config = model.config()
    _say(
        f"model: {args.checkpoint}: {config.get('field', config.get('kind'))}, state size {model.state_size}, "
        f"encoder window {model.encoder_window}",
        f"data: {args.data}: {len(record)} rows",
    )
    sim = simulate(model, record, init_window=n)
    df = sim.to_dataframe()
    df[record.time_name] = _file_times(record.t, cols["time_unit"])
    if not measured:
        df = df.drop(columns=list(outputs))
    df.to_csv(out, index=False, sep=args.delimiter)
    if measured:
        scores = sim.scores()
        _say(f"RMSE: {scores['rmse']:.6g}", f"FIT: {scores['fit']:.2f} %", f"R2: {scores['r2']:.4f}")
    else:
        _say(f"no column {outputs[0]!r} in {args.data}: prediction only, no scores")
    note = f"; the first {n} predictions are empty (those samples set the initial state)" if n else ""
    _say(f"wrote {out}: {len(df)} rows, columns {', '.join(df.columns)}{note}")
    return 0


COMMANDS = {"check": _cmd_check, "fit": _cmd_fit, "simulate": _cmd_simulate}


# --- entry point ------------------------------------------------------------------------------------
def _one_line(text) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _error(message: str) -> None:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr, flush=True)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {_one_line(message)}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run ``odernn-lite`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2), --help and --version (0)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    debug = bool(getattr(args, "debug", False))
    from .train import TrainingDiverged

    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        if debug:
            raise
        _error("interrupted")
        return 130
    except TrainingDiverged as e:
        if debug:
            raise
        # The library's advice names API arguments (clip=...); give the command-line one instead.
        what = str(e).split(" Try ")[0].rstrip(" .")
        _error(f"training diverged at {what}; nothing was saved; try a smaller --lr (was {args.lr:g}) or a shorter --window")
        return 1
    except ValueError as e:
        if debug:
            raise
        _error(str(e))
        return 2
    except OSError as e:
        if debug:
            raise
        if e.filename is None:  # not about a file the user named
            _error(f"unexpected {type(e).__name__}: {e} (run with --debug for the traceback)")
            return 1
        _error(f"{e.filename}: {e.strerror or e}")
        return 2
    except Exception as e:
        if debug:
            raise
        _error(f"unexpected {type(e).__name__}: {e} (run with --debug for the traceback)")
        return 1
