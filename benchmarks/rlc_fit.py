"""The `odernn-lite` command-line defaults on the simulated RLC circuit (Forgione & Piga 2021 data).

Trains with `odernn-lite fit` on `RLC_data_id.csv` under a time budget, free-runs the held-out
`RLC_data_test.csv` with `odernn-lite simulate`, and scores the prediction file. Prints the test
RMSE, FIT and R²; the goal is a free-run test FIT of at least 95 %.

    python benchmarks/rlc_fit.py                         # 120 s budget
    python -c "import benchmarks.rlc_fit as b; b.main(max_seconds=30)"
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import odernn_lite as ol

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rlc_simulated"
COLUMNS = ["--time-col", "time", "--input-col", "V_IN", "--output-col", "V_C"]


def main(*, max_seconds: float = 120, seed: int = 0, model: str = "neural-ss", data: Path = DATA, extra: tuple = ()) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, pred = Path(tmp) / "model.pt", Path(tmp) / "pred.csv"
        cli = [sys.executable, "-m", "odernn_lite"]
        start = time.perf_counter()
        subprocess.run([*cli, "fit", str(data / "RLC_data_id.csv"), "--out", str(ckpt), *COLUMNS,
                        "--max-seconds", str(max_seconds), "--seed", str(seed), "--model", model, *extra], check=True)  # fmt: skip
        fit_seconds = time.perf_counter() - start
        subprocess.run([*cli, "simulate", str(ckpt), str(data / "RLC_data_test.csv"), "--out", str(pred)], check=True)
        df = pd.read_csv(pred).dropna()
    y, y_hat = df["V_C"].to_numpy(), df["V_C_pred"].to_numpy()
    result = {"test_rmse_V": ol.rmse(y, y_hat), "test_fit_%": ol.fit(y, y_hat), "test_r2": ol.r2(y, y_hat),
              "fit_wall_s": fit_seconds, "budget_s": max_seconds, "model": model, "seed": seed}  # fmt: skip
    print(f"RLC test (free run, {len(df)} samples): RMSE {result['test_rmse_V']:.3f} V, FIT {result['test_fit_%']:.2f} %, "
          f"R2 {result['test_r2']:.4f}; fit took {fit_seconds:.0f} s wall for a {max_seconds} s budget")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
