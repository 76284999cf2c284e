"""Chapter 7's cumulative ablation at the book's full budget.

Trains every step of :data:`odernn_lite.ablation.STEPS` (forum design → + each fix → final model) for
the same number of updates on the simulated nonlinear RLC circuit of chapters 4-5 (4000 training
samples, seed 0), free-runs a held-out record (2000 samples, seed 1), and writes

* ``benchmarks/results/ablation.csv``: the table (one row per step);
* ``benchmarks/results/ablation_predictions.csv``: every step's free run of the held-out record;
* ``benchmarks/results/ablation_final.pt``: the final model's checkpoint (with its training
  history), which chapter 7 loads.

    python benchmarks/ablation.py                    # 2000 updates per step: about 35 min on 2 cores
    python -c "import benchmarks.ablation as b; b.main(updates=100)"
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import pandas as pd
import torch

import odernn_lite as ol
from odernn_lite.ablation import run_ablation

RESULTS = Path(__file__).resolve().parent / "results"
N_TRAIN, N_TEST = 4000, 2000


def main(*, updates: int = 2000, seed: int = 0, out: Path = RESULTS, threads: int | None = None) -> dict:
    if threads is not None:
        torch.set_num_threads(threads)
    train = ol.from_dataframe(ol.circuits.nonlinear_rlc(N_TRAIN, seed=seed))
    test = ol.from_dataframe(ol.circuits.nonlinear_rlc(N_TEST, seed=seed + 1))
    start = time.perf_counter()
    table, models = run_ablation(train, test, updates=updates, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "ablation.csv", index=False)
    predictions = pd.DataFrame({"t": test.t.numpy(), "y": test.y[:, 0].numpy()})
    for k, (_, y_hat) in enumerate(models.values()):
        predictions[f"step_{k}"] = y_hat[:, 0].numpy()
    predictions.to_csv(out / "ablation_predictions.csv", index=False, float_format="%.6g")
    final_trainer, _ = models[table.fix.iloc[-1]]
    ol.save_checkpoint(out / "ablation_final.pt", final_trainer.model, trainer=final_trainer, n_train=N_TRAIN, n_test=N_TEST, seed=seed,
                       updates=updates, torch_threads=torch.get_num_threads(), machine=platform.machine())  # fmt: skip
    print(table.drop(columns=["chapter"]).round(3).to_string(index=False))
    print(f"total {time.perf_counter() - start:.0f} s; final model free-run FIT {table.val_fit.iloc[-1]:.2f} %")
    return {"table": table, "final_fit": float(table.val_fit.iloc[-1])}


if __name__ == "__main__":
    main()
