#!/usr/bin/env bash
# Measure the int8-vs-fp32 latency target on this machine: export fp32 and full-integer int8 TFLite
# (calibrated on ../shared/data/calib, never the hold-out), time them interleaved in one run at
# 1 thread, and show where each spends its time. Prints the CPU's int8 dot-product flags first:
# without VNNI / dotprod, XNNPACK's int8 kernels are no faster than its fp32 ones.
#   bash scripts/int8_latency.sh [OUT_DIR]      (default: int8_latency/, ~2 minutes)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-int8_latency}
sd=.venv/bin/sinet-deploy
calib=()
[ -d ../shared/data/calib ] && calib=(--calib ../shared/data/calib)
$sd env | grep -E '^(cpu|int8_)'
$sd export --formats tflite --precisions fp32,int8 "${calib[@]}" --out "$out" >/dev/null
$sd bench "$out"/tflite/sinet_224x224_fp32.tflite "$out"/tflite/sinet_224x224_int8.tflite \
  --threads 1 --runs 200 --no-torch --no-cuda
$sd profile "$out"/tflite/sinet_224x224_int8.tflite --against "$out"/tflite/sinet_224x224_fp32.tflite \
  --runs 50 --top 5
