"""The ``odernn-lite`` command line.

The end-to-end tests run ``python -m odernn_lite`` in subprocesses. Each one starts a fresh
interpreter that imports torch (several CPU seconds), so one module fixture starts them together
and they run concurrently; each test then checks the result of its own command. The many
bad-input cases call :func:`odernn_lite.cli.main` in-process instead, which runs the same code
(argument parsing, the command, the error handling) in milliseconds.

Torch runs single-threaded (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``): tiny models
gain nothing from intra-op threads, and several processes fighting over a few cores with spinning
thread pools run many times slower.
"""

import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

from odernn_lite import circuits
from odernn_lite.cli import main

CMD = [sys.executable, "-m", "odernn_lite"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ODERNN_DEVICE": "cpu"}
TIMEOUT = 300
# A tiny, fast training run: a few updates on short windows.
FAST_FIT = ["--iters", "3", "--max-seconds", "60", "--window", "20", "--batch-size", "8", "--state-size", "4"]


@dataclass
class Result:
    args: list
    returncode: int
    stdout: str
    stderr: str

    def __str__(self):
        return f"odernn-lite {' '.join(self.args)} -> {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


class Runs:
    """CLI subprocesses started at once, whose results are collected on demand."""

    def __init__(self, cwd):
        self.cwd, self.procs, self.results = cwd, {}, {}

    def start(self, name, *args):
        args = [str(a) for a in args]
        proc = subprocess.Popen(CMD + args, cwd=self.cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs[name] = (args, proc)

    def __getitem__(self, name) -> Result:
        if name not in self.results:
            args, proc = self.procs[name]
            try:
                out, err = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            self.results[name] = Result(args, proc.returncode, out, err)
        return self.results[name]

    def close(self):
        for _, proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


GOOD = "T,in,out\n0.0,1.0,0.5\n0.5,2.0,0.25\n1.0,3.0,0.125\n1.5,4.0,0.0625\n"

# name -> (file content or None for no file, the problem as it must appear in the message)
BAD_FILES = {
    "missing_column": ("T,in,y\n0,1,2\n1,2,3\n", "output column 'out' not found"),
    "non_numeric": ("T,in,out\n0,1,2\n1,abc,3\n2,3,4\n", "line 3, column 'in': 'abc' is not a number"),
    "duplicate_time": ("T,in,out\n0,1,2\n1,2,3\n1,3,4\n", "line 4, column 'T': time 1.0 repeats"),
    "empty": ("", "the file is empty"),
    "missing_file": (None, "file not found"),
    "wrong_delimiter": ("T;in;out\n0;1;2\n1;2;3\n", "looks ';'-delimited"),
}


def write_files(d):
    (d / "good.csv").write_text(GOOD)
    for name, (text, _) in BAD_FILES.items():
        if text is not None:
            (d / f"{name}.csv").write_text(text)
    rlc = circuits.linear_rlc(n=600, seed=1)
    rlc.to_csv(d / "rlc.csv", index=False)
    rlc[:60].to_csv(d / "short.csv", index=False)
    rlc.drop(columns=["out"]).to_csv(d / "no_output.csv", index=False)
    rlc.rename(columns={"T": "time", "in": "u", "out": "y"}).to_csv(d / "renamed.csv", index=False)
    (d / "not_a_checkpoint.pt").write_text("this is text, not a checkpoint\n")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(folder, Runs): the subprocesses that need no fitted model, and the fit, all started now."""
    d = tmp_path_factory.mktemp("cli")
    write_files(d)
    r = Runs(d)
    try:
        r.start("fit", "fit", "rlc.csv", "--out", "model.pt", *FAST_FIT)
        r.start("check", "check", "good.csv")
        r.start("non_numeric", "check", "non_numeric.csv")
        r.start("unknown_model", "fit", "rlc.csv", "--out", "m.pt", "--model", "transformer")
        r.start("not_a_checkpoint", "simulate", "not_a_checkpoint.pt", "rlc.csv", "--out", "p.csv")
        yield d, r
    finally:
        r.close()


@pytest.fixture(scope="module")
def fitted(runs):
    """(folder, Runs) once the fit is done, with the simulation subprocess started."""
    d, r = runs
    assert r["fit"].returncode == 0, str(r["fit"])
    r.start("simulate", "simulate", "model.pt", "rlc.csv", "--out", "pred.csv")
    return d, r


@pytest.fixture
def cli(runs, capsys, monkeypatch):
    """Run ``odernn-lite ARGS`` in-process in the files' folder; returns a :class:`Result`."""
    d, _ = runs
    monkeypatch.chdir(d)
    monkeypatch.setenv("ODERNN_DEVICE", "cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def run(*args):
        args = [str(a) for a in args]
        code = main(args)
        out, err = capsys.readouterr()
        return Result(args, code, out, err)

    yield run
    torch.set_num_threads(threads)


def assert_one_line_error(res: Result, *fragments, code=2):
    """Exit ``code``, exactly one stderr line ``odernn-lite: error: …`` containing the fragments."""
    assert res.returncode == code, str(res)
    assert "Traceback" not in res.stderr, str(res)
    lines = res.stderr.splitlines()
    assert len(lines) == 1, str(res)
    assert lines[0].startswith("odernn-lite: error: "), str(res)
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in the message\n{res}"


# --- subprocesses: python -m odernn_lite ------------------------------------------------------------
def test_check_good_file(runs):
    res = runs[1]["check"]
    assert res.returncode == 0, str(res)
    out = res.stdout
    assert "source: good.csv" in out and "rows: 4" in out and "sampling: regular" in out
    assert "dt median: 0.5 s" in out
    assert "in range: 1 .. 4" in out and "out range: 0.0625 .. 0.5" in out
    assert res.stderr == ""


def test_check_bad_file_end_to_end(runs):
    res = runs[1]["non_numeric"]
    assert_one_line_error(res, "non_numeric.csv", BAD_FILES["non_numeric"][1])
    assert res.stdout == ""


def test_unknown_model_is_a_usage_error(runs):
    res = runs[1]["unknown_model"]
    assert res.returncode == 2, str(res)
    assert "invalid choice: 'transformer'" in res.stderr and "neural-ss" in res.stderr
    assert "usage: odernn-lite fit" in res.stderr and "Traceback" not in res.stderr


def test_simulate_rejects_a_file_that_is_not_a_checkpoint(runs):
    res = runs[1]["not_a_checkpoint"]
    assert_one_line_error(res, "not_a_checkpoint.pt", "not an odernn-lite checkpoint")


def test_fit_reports_window_scores_and_writes_checkpoint(runs):
    d, r = runs
    res = r["fit"]
    assert res.returncode == 0, str(res)
    out = res.stdout
    assert "600 rows, 480 for training, 120 for validation" in out
    assert "window: 20 samples (--window)" in out
    assert "updates: 3" in out and "training seconds:" in out
    assert "validation RMSE:" in out and "validation FIT:" in out and " %" in out
    assert (d / "model.pt").is_file() and "wrote model.pt" in out


def test_simulate_round_trip(fitted):
    d, r = fitted
    res = r["simulate"]
    assert res.returncode == 0, str(res)
    assert "RMSE:" in res.stdout and "FIT:" in res.stdout
    pred = pd.read_csv(d / "pred.csv")
    data = pd.read_csv(d / "rlc.csv")
    assert list(pred.columns) == ["T", "out_pred", "out"]
    assert len(pred) == len(data)
    np.testing.assert_array_equal(pred["T"], data["T"])
    np.testing.assert_allclose(pred["out"], data["out"], rtol=1e-6, atol=1e-5)
    assert pred["out_pred"][:10].isna().all()  # the encoder window only sets the state
    assert np.isfinite(pred["out_pred"][10:]).all()


# --- in-process: main(argv) -------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_check_bad_file(cli, name):
    res = cli("check", f"{name}.csv")
    assert_one_line_error(res, f"{name}.csv", BAD_FILES[name][1])
    assert res.stdout == ""


@pytest.mark.parametrize("args", [["check", "good.csv"], ["fit", "rlc.csv", "--out", "m.pt"], ["simulate", "m.pt", "rlc.csv", "--out", "p.csv"]])
def test_unknown_option_is_a_usage_error(cli, args):
    res = cli(*args, "--no-such-option")
    assert res.returncode == 2, str(res)
    assert "unrecognized arguments: --no-such-option" in res.stderr and "usage: odernn-lite" in res.stderr


@pytest.mark.parametrize("args, message", [
    (["--model", "transformer"], "invalid choice: 'transformer'"),
    (["--val-fraction", "1.5"], "--val-fraction: must be strictly between 0 and 1"),
    (["--window", "1"], "--window: must be at least 2"),
    (["--lr", "nan"], "--lr: must be a positive finite number"),
    (["--anneal", "2"], "--anneal: must be in (0, 1], got 2"),
])  # fmt: skip
def test_bad_fit_options_are_usage_errors(cli, args, message):
    res = cli("fit", "rlc.csv", "--out", "m.pt", *args)
    assert res.returncode == 2 and message in res.stderr, str(res)


def test_missing_command_is_a_usage_error(cli):
    res = cli()
    assert res.returncode == 2 and "required: COMMAND" in res.stderr, str(res)


def test_fit_output_directory_must_exist(cli):
    res = cli("fit", "rlc.csv", "--out", "no/such/dir/m.pt", *FAST_FIT)
    assert_one_line_error(res, "no/such/dir/m.pt", "'no/such/dir' does not exist")
    assert res.stdout == ""  # it failed before loading or training anything


def test_fit_record_too_short_for_the_windows(cli):
    res = cli("fit", "short.csv", "--out", "m.pt", "--window", "40")
    assert_one_line_error(res, "short.csv", "training part (48 of 60 rows)", "encoder window 10 + window 40", "--window")
    res = cli("fit", "short.csv", "--out", "m.pt", "--val-fraction", "0.1")
    assert_one_line_error(res, "short.csv", "validation part (6 of 60 rows)", "--val-fraction")
    res = cli("fit", "good.csv", "--out", "m.pt")
    assert_one_line_error(res, "good.csv", "4 rows are too few to split")


def test_fit_default_window_shrinks_to_fit_a_short_record(cli, runs):
    d, _ = runs
    res = cli("fit", "short.csv", "--out", "short.pt", "--iters", "1", "--batch-size", "2", "--state-size", "2")
    assert res.returncode == 0, str(res)
    assert "window: 37 samples (the default 50 does not fit in the 48 training rows" in res.stdout
    assert (d / "short.pt").is_file()


def test_diverged_training_exits_1_with_one_line(cli, runs):
    d, _ = runs
    res = cli("fit", "rlc.csv", "--out", "diverged.pt", *FAST_FIT, "--lr", "1e30")
    assert_one_line_error(res, "training diverged", "--lr", code=1)
    assert not (d / "diverged.pt").exists()


def test_checkpoint_stores_columns_and_options(fitted):
    d, _ = fitted
    from odernn_lite import load_checkpoint

    model, ckpt = load_checkpoint(d / "model.pt")
    extra = ckpt["extra"]
    assert extra["columns"] == {"time": "T", "input": "in", "output": "out", "time_unit": "s"}
    assert extra["cli_args"]["model"] == "neural-ss" and extra["cli_args"]["iters"] == 3
    assert set(extra["validation"]) >= {"rmse", "fit"}
    assert model.encoder_window == 10 and model.state_size == 4
    assert ckpt["trainer"]["step"] == 3


def test_simulate_column_options_override_the_checkpoint(cli, fitted):
    d, _ = fitted
    res = cli("simulate", "model.pt", "renamed.csv", "--out", "p4.csv", "--time-col", "time", "--input-col", "u", "--output-col", "y")
    assert res.returncode == 0, str(res)
    assert list(pd.read_csv(d / "p4.csv").columns) == ["time", "y_pred", "y"]


def test_simulate_init_window_must_match_the_encoder(cli, fitted):
    res = cli("simulate", "model.pt", "rlc.csv", "--out", "p2.csv", "--init-window", "3")
    assert_one_line_error(res, "--init-window 3", "encoder window of 10")


def test_simulate_needs_the_output_column_for_the_encoder(cli, fitted):
    res = cli("simulate", "model.pt", "no_output.csv", "--out", "p3.csv")
    assert_one_line_error(res, "no_output.csv", "output column 'out' not found", "encoder")


def test_simulate_missing_checkpoint(cli):
    assert_one_line_error(cli("simulate", "nowhere.pt", "rlc.csv", "--out", "p.csv"), "nowhere.pt", "checkpoint not found")


def test_main_does_not_exit_and_debug_reraises(cli):
    """main() returns the status, also for --help; --debug shows the real exception."""
    assert cli("--help").returncode == 0
    with pytest.raises(ValueError, match="file not found"):
        main(["check", "missing.csv", "--debug"])
