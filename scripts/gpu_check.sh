#!/usr/bin/env bash
# The GPU path: unit tests and every notebook under nbval with ODERNN_DEVICE=cuda, one timing per notebook.
#   bash scripts/gpu_check.sh            (from the repository root, after the README's set-up command)
# Needs a CUDA build of torch (the pinned requirements install the CPU wheel; see the README).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export ODERNN_DEVICE=${ODERNN_DEVICE:-cuda}
export ODERNN_BENCHMARKS_DIR=${ODERNN_BENCHMARKS_DIR:-$PWD/../shared/data/nonlinear_benchmarks_cache}
"$PY" -c "import torch, sys; ok = torch.cuda.is_available(); print('torch', torch.__version__, '| cuda available:', ok,
'|', torch.cuda.get_device_name(0) if ok else 'no GPU'); sys.exit(0 if ok else 3)" || { echo "no CUDA GPU: nothing to check"; exit 3; }
status=0
start=$(date +%s)
# (the browser test of the built book does not touch the device, so it is left to CI)
"$PY" -m pytest -q tests --ignore=tests/test_book_browser.py || status=1
echo "unit tests: $(( $(date +%s) - start )) s"
for nb in book/*.ipynb; do
  start=$(date +%s)
  if "$PY" -m pytest -q --nbval-lax --nbval-cell-timeout=900 "$nb" > /tmp/gpu_check_$$.log 2>&1; then result=passed; else result=FAILED; status=1; tail -30 /tmp/gpu_check_$$.log; fi
  echo "$nb: $result in $(( $(date +%s) - start )) s"
done
rm -f /tmp/gpu_check_$$.log
exit $status
