#!/usr/bin/env bash
# A separate venv for the benchmarks that compare against peers (bench/peers.py) or score with
# TrackEval (bench/mot17_eval.py, `python -m assoc_logger_ros eval`). Idempotent.
#   bash scripts/bench_env.sh            # -> ${ASSOC_BENCH_VENV:-/tmp/assoc_benchvenv}
#   OPENBLAS_NUM_THREADS=1 PYTHONPATH=. nice /tmp/assoc_benchvenv/bin/python bench/peers.py
# BoxMOT 25 imports torch even for ByteTrack and its dependency list pulls a CUDA build of torch;
# the CPU wheel 2.13.0 is installed first, then boxmot without its dependencies
# (../shared/notes/mot-protocol.md).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_VENV=${ASSOC_BENCH_VENV:-/tmp/assoc_benchvenv}
STAMP=$BENCH_VENV/.assoc_bench_stamp
want=$(sha256sum "$ROOT/requirements/bench.in" "$ROOT/requirements/runtime.in" | sha256sum | cut -c1-16)
if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
    echo "bench_env: ready: $BENCH_VENV"; exit 0
fi
python3 -m venv "$BENCH_VENV"
pip=("$BENCH_VENV/bin/pip" install -q -c "$ROOT/requirements/constraints.txt")
"${pip[@]}" numpy scipy PyYAML rosbags
"$BENCH_VENV/bin/pip" install -q torch==2.13.0
"$BENCH_VENV/bin/pip" install -q --no-deps boxmot==25.0.0
"$BENCH_VENV/bin/pip" install -q -r "$ROOT/requirements/bench.in"
echo "$want" > "$STAMP"
echo "bench_env: ready: $BENCH_VENV"
