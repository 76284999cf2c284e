"""One epoch over the same record, solver and chunking: the forum's sequential chunk loop (TBPTT,
one solve and one update per chunk) against the parallel multiple-shooting trainer (all windows in
one batched solve). Prints both wall times and their ratio.

    python benchmarks/trainers.py            # defaults below
"""

from __future__ import annotations

import time

import torch

import odernn_lite as ol


def main(*, n_chunks: int = 100, chunk: int = 10, state_size: int = 8, field: str = "neural-ss",
         method: str = "rk4", repeats: int = 3, seed: int = 0) -> dict:  # fmt: skip
    encoder_window = 10
    record = ol.from_dataframe(ol.circuits.linear_rlc(encoder_window + n_chunks * chunk + 1, seed=seed))

    def model():
        torch.manual_seed(seed)
        return ol.ODEModel(field, state_size, encoder_window=encoder_window, method=method).set_scaling(record)

    def sequential():
        trainer = ol.TBPTTTrainer(model(), chunk=chunk, k1=1, progress=False)
        trainer.fit(record, iters=n_chunks)  # one epoch: every chunk once, an update after each
        return trainer

    def parallel():
        trainer = ol.MultipleShootingTrainer(model(), window=chunk, batch_size=n_chunks, progress=False)
        trainer.fit(record, iters=1)  # one epoch: the same number of windows, one batched solve
        return trainer

    times = {}
    for name, run in (("sequential", sequential), ("parallel", parallel)):
        run()  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        times[name] = best
    result = {**times, "ratio": times["sequential"] / times["parallel"], "n_chunks": n_chunks, "chunk": chunk, "method": method}
    print(f"one epoch of {n_chunks} chunks of {chunk} samples ({field}, {method}), best of {repeats}:")
    print(f"  sequential TBPTT loop : {times['sequential']:.3f} s")
    print(f"  parallel shooting     : {times['parallel']:.3f} s")
    print(f"  ratio                 : {result['ratio']:.1f}x")
    return result


if __name__ == "__main__":
    main()
