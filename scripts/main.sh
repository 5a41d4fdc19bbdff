#!/usr/bin/env bash
# The README's first command: set up if needed, then run the main job on the official weights —
# export every format and precision -> parity -> bench (with MediaPipe's peer when ../shared has
# it) -> one-screen summary and a report in sinet_out/report/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
shared=../shared
# The official weights: use the cache, else a local copy beside the project, else download.
if ! .venv/bin/sinet-deploy weights path --json | grep -q '"cached": true' \
    && [ -f "$shared/weights/SINet_EG1800.pth" ]; then
  .venv/bin/sinet-deploy weights import "$shared/weights/SINet_EG1800.pth"
fi
args=(--out sinet_out)
[ -f "$shared/peers/selfie_segmentation.tflite" ] && args+=(--peer "$shared/peers/selfie_segmentation.tflite")
# Parity on the licensed calibration portraits when present (never on the hold-out set).
[ -d "$shared/data/calib" ] && args+=(--images "$shared/data/calib")
[ -d "$shared/data/calib" ] && args+=(--calib "$shared/data/calib")
exec .venv/bin/sinet-deploy pipeline "${args[@]}" "$@"
