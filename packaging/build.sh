#!/usr/bin/env bash
# Build the one-folder bundle dist/lipreader/ with PyInstaller, then check and measure it.
#   packaging/build.sh [gpu|cpu]    gpu (default): with ONNX Runtime's CUDA provider; cpu: without it
# Environment: LIPREADER_MODEL=FILE bundles FILE as the model (see build.spec); NICE=N (default 10).
# Prints the build time, then (bench/bundle.py) the bundle size, the self-test and the cold start.
set -euo pipefail
cd "$(dirname "$0")/.."
variant="${1:-${LIPREADER_BUILD:-gpu}}"
case "$variant" in cpu|gpu) ;; *) echo "usage: $0 [gpu|cpu]" >&2; exit 2 ;; esac
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
python -c "import PyInstaller" 2>/dev/null \
  || { echo "build.sh: PyInstaller is missing: pip install -e '.[dev]'" >&2; exit 1; }

mkdir -p build
# OpenCV for the bundle: opencv-python-headless, the same cv2 without the GUI that links Qt5 and X11
# (~85 MiB less). MediaPipe requires opencv-contrib-python in the environment, so the headless
# build goes to build/opencv-headless/, first on PYTHONPATH while PyInstaller runs. The app uses
# only cv2's core, imgproc and videoio, which both builds share. Without the package index the
# bundle takes the environment's cv2 (the build says so).
opencv_headless="opencv-python-headless==5.0.0.93"
overlay="build/opencv-headless"
if [ ! -f "$overlay/.$opencv_headless" ]; then
  rm -rf "$overlay"
  if nice -n "${NICE:-10}" python -m pip install --no-deps --target "$overlay" "$opencv_headless" \
    >build/pip-opencv-headless.log 2>&1; then
    touch "$overlay/.$opencv_headless"
  else
    rm -rf "$overlay"
    echo "build.sh: could not install $opencv_headless (build/pip-opencv-headless.log);" \
      "bundling the environment's OpenCV" >&2
  fi
fi
pythonpath="${PYTHONPATH:-}"
if [ -d "$overlay" ]; then pythonpath="$PWD/$overlay${pythonpath:+:$pythonpath}"; fi

log="build/pyinstaller-$variant.log"
echo "building dist/lipreader ($variant) with PyInstaller; log: $log"
start=$(date +%s)
if ! PYTHONPATH="$pythonpath" LIPREADER_BUILD="$variant" nice -n "${NICE:-10}" \
  pyinstaller build.spec --noconfirm >"$log" 2>&1; then
  grep -E "error|Error" "$log" | tail -5 >&2
  echo "build.sh: PyInstaller failed; see $log" >&2
  exit 1
fi
echo "built in $(( $(date +%s) - start )) s"

# What must not be in the bundle: training code, torch and the other excluded packages
leaks=$(grep -oE "\('(training|torch|tensorboard|matplotlib|tkinter|PIL|onnx)(\.[A-Za-z_.]+)?'" \
  build/build/PYZ-00.toc | sort -u | head -5 || true)
files=$(find dist/lipreader \( -iname "*torch*" -o -iname "*tensorboard*" -o -iname "*matplotlib*" \
  -o -iname "*tcl*" -o -iname "*tk8*" -o -path "*/training/*" \) | head -5)
if [ -n "$leaks$files" ]; then
  echo "build.sh: excluded packages ended up in the bundle:" $leaks $files >&2
  exit 1
fi
echo "no training/, torch, tensorboard, matplotlib or tkinter in the bundle"

# The bundle must use its own model and asset, not the ones named in this shell
exec env -u LIPREADER_MODEL -u LIPREADER_LANDMARKER python bench/bundle.py --bundle dist/lipreader
