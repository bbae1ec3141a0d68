#!/usr/bin/env bash
# Build what a lent GPU machine needs for bench/gpu_check.sh and has not got (no network there):
#   .whl/             PyAV, facexlib and filterpy wheels (the device image has torch, not these)
#   .devcarry/shared/ the golden fixtures, the MobileNet detector, the photos and the two clips the
#                     CUDA tests and the e2e benchmark read (a subset of ../shared: all of it and
#                     the wheels would pass the 64 MiB carry limit)
# Run from the repo root on the CPU machine; then give the device tool carry: [".whl", ".devcarry"]
# and STREAM_GPEN_SHARED=$PWD/.devcarry/shared is found by gpu_check.sh itself. ~63 MB in all.
set -euo pipefail
SHARED=${STREAM_GPEN_SHARED:-../shared}
PY=${PY:-.venv/bin/python}
[[ -d "$SHARED/fixtures/gpen" ]] || { echo "no shared folder at $SHARED (set STREAM_GPEN_SHARED)" >&2; exit 2; }
files=(
  fixtures/gpen/alignment_golden.json
  fixtures/gpen/keys_256.txt fixtures/gpen/keys_512.txt fixtures/gpen/keys_1024.txt fixtures/gpen/keys_2048.txt
  weights/detection_mobilenet0.25_Final.pth
  data/faces/aligned/gpen_ffhq_00000.png data/faces/aligned/gpen_ffhq_00001.png data/faces/aligned/gpen_ffhq_00002.png
  data/faces/whole/codeformer_whole_00.jpg data/faces/whole/gfpgan_whole_00.jpg
  data/faces/whole/gpen_Solvay_conference_1927.png
  data/videos/retalking_face2_frontal_talking_head.mp4 data/videos/facenet_crowd_1080p_multiface.mp4
)
# the golden GPEN fixtures the CUDA tests read (the 256-px ones only in the forms they read: the
# whole set and the wheels would pass the limit)
for f in input.pt intermediates.pt output.pt output_f64.pt pk_output.pt pk_output_f64.pt pk_state_dict.pt \
         pk_state_dict.safetensors state_dict.pt state_dict.safetensors; do
  files+=("fixtures/gpen/gpen_tiny64_$f")
done
for f in input.pt output.pt pk_output.pt pk_state_dict.pt state_dict.safetensors; do
  files+=("fixtures/gpen/gpen_tiny256_$f")
done
rm -rf .devcarry/shared
for f in "${files[@]}"; do
  mkdir -p ".devcarry/shared/$(dirname "$f")"
  cp "$SHARED/$f" ".devcarry/shared/$f"
done
mkdir -p .whl
if ! compgen -G ".whl/av-*.whl" >/dev/null; then
  "$PY" -m pip download -q --no-deps -d .whl "av==$("$PY" -c 'import av; print(av.__version__)')" \
      "facexlib==$("$PY" -c 'import importlib.metadata as m; print(m.version("facexlib"))')" \
      "filterpy==$("$PY" -c 'import importlib.metadata as m; print(m.version("filterpy"))')" \
    || echo "could not download the wheels into .whl/ (no network?): put av, facexlib and filterpy wheels there" >&2
fi
du -sh .devcarry .whl
