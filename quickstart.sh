#!/usr/bin/env bash
# LipReader quick start.
#   ./quickstart.sh app    set up .venv/ and start the app with the shipped model
#   ./quickstart.sh test   set up .venv/ with the train and dev extras and run the checks and tests
# Extra arguments after `app` go to `lipreader`, after `test` to pytest.
set -euo pipefail
cd "$(dirname "$0")"
what="${1:-app}"
shift || true

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip

case "$what" in
  app)
    [ -f .venv/.app-installed ] || { python -m pip install -q -e . && touch .venv/.app-installed; }
    ;;
  test)
    # CPU torch for training tests; a plain `torch` could pull a CUDA build of several GB
    python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
    python -m pip install -q -e ".[train,dev]"
    touch .venv/.app-installed
    ;;
  *) echo "usage: $0 app|test [args...]" >&2; exit 2 ;;
esac

# the MediaPipe landmark model: copied from ../shared/assets when present, else downloaded (SHA-256 checked)
if ! python -c "from core.assets import landmarker_path; landmarker_path()" 2>/dev/null; then
  if [ -f ../shared/assets/face_landmarker.task ]; then
    lipreader assets fetch --from ../shared/assets
  else
    lipreader assets fetch
  fi
fi

case "$what" in
  app) exec lipreader "$@" ;;
  test)
    ruff check .
    lint-imports
    set +e
    QT_QPA_PLATFORM=offscreen python -m pytest -m "not gpu and not camera" -q "$@"
    code=$?
    set -e
    [ "$code" -eq 5 ] && { echo "no tests ran" >&2; exit 1; }
    exit "$code"
    ;;
esac
