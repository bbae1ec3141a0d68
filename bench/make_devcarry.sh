#!/usr/bin/env bash
# Build what a lent GPU machine needs for bench/gpu_check.sh and has not got (no network there):
#   .whl/             PyAV, facexlib, filterpy and the server's wheels (FastAPI, pydantic, uvicorn, opentelemetry-api,
#                     python-multipart, websockets) for the device's Python (3.12): its image has
#                     torch, numpy, OpenCV, Pillow, tifffile, pytest, not these. Not pillow-heif
#                     (5.7 MB; no CUDA test reads a HEIC photo)
#   .devcarry/shared/ the golden fixtures, the MobileNet detector, the photos and the two clips the
#                     CUDA tests and the e2e benchmark read (a subset of ../shared: all of it and
#                     the wheels would pass the 64 MiB carry limit)
# Run from the repo root on the CPU machine; then give the device tool carry: [".whl", ".devcarry"]
# and STREAM_GPEN_SHARED=$PWD/.devcarry/shared is found by gpu_check.sh itself. ~62 MiB in all with
# the working tree (the carry limit is 64 MiB): add nothing without taking something out.
set -euo pipefail
SHARED=${STREAM_GPEN_SHARED:-../shared}
PY=${PY:-.venv/bin/python}
[[ -d "$SHARED/fixtures/gpen" ]] || { echo "no shared folder at $SHARED (set STREAM_GPEN_SHARED)" >&2; exit 2; }
files=(
  fixtures/gpen/alignment_golden.json
  fixtures/gpen/keys_256.txt fixtures/gpen/keys_512.txt fixtures/gpen/keys_1024.txt fixtures/gpen/keys_2048.txt
  weights/detection_mobilenet0.25_Final.pth
  data/faces/aligned/gpen_ffhq_00000.png data/faces/aligned/gpen_ffhq_00001.png data/faces/aligned/gpen_ffhq_00002.png
  data/faces/whole/codeformer_whole_00.jpg
  data/faces/whole/gpen_Solvay_conference_1927.png
  data/videos/retalking_face2_frontal_talking_head.mp4 data/videos/facenet_crowd_1080p_multiface.mp4
)
# the golden GPEN fixtures the CUDA tests read (the 256-px ones only in the forms they read: the
# whole set and the wheels would pass the limit)
# (not tiny64_intermediates.pt, 3.5 MB: a CPU test's)
for f in input.pt output.pt output_f64.pt pk_output.pt pk_output_f64.pt pk_state_dict.pt \
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
DEVICE_PY=${DEVICE_PY:-3.12}  # the lent machine's python3
version() { "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
if ! compgen -G ".whl/av-*.whl" >/dev/null; then
  plat=()
  for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
           manylinux_2_5_x86_64 manylinux1_x86_64; do plat+=(--platform "$p"); done
  # compiled ones for the device's Python, pure-Python ones as they are
  for pkg in av pydantic_core websockets; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PY" --implementation cp \
        "${plat[@]}" -d .whl "$pkg==$(version "$pkg")" \
      || echo "could not download $pkg for Python $DEVICE_PY into .whl/ (no network?)" >&2
  done
  pure=()
  for pkg in facexlib filterpy fastapi starlette pydantic uvicorn python-multipart annotated-types typing-inspection \
             opentelemetry-api; do  # (FastAPI imports opentelemetry since 0.16x)
    pure+=("$pkg==$(version "$pkg")")
  done
  "$PY" -m pip download -q --no-deps -d .whl "${pure[@]}" \
    || echo "could not download the pure-Python wheels into .whl/ (no network?)" >&2
fi
du -sh .devcarry .whl
