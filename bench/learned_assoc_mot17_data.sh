#!/usr/bin/env bash
# MOT17 training samples for the learned association benchmark: the FIRST half of every
# half-val sequence (frames 1 .. N//2+1), as a bag with ground truth (mot2bag --with-gt),
# replayed through the tracker with the sequence's frame rate and image size.
#   bash bench/learned_assoc_mot17_data.sh WORK_DIR      # -> WORK_DIR/samples/<SEQ>/
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${1:?usage: learned_assoc_mot17_data.sh WORK_DIR}
DATA=${ASSOC_BENCH_DATA:-$ROOT/../shared/bench-data}/MOT17/train
PY=${PY:-$ROOT/.venv/bin/python}
mkdir -p "$WORK/bags" "$WORK/samples"
for SEQ in MOT17-02 MOT17-04 MOT17-05 MOT17-09 MOT17-10 MOT17-11 MOT17-13; do
    [ -f "$WORK/samples/$SEQ/manifest.jsonl" ] && continue
    ini=$DATA/$SEQ/seqinfo.ini
    n=$(sed -n 's/^seqLength=//p' "$ini"); fps=$(sed -n 's/^frameRate=//p' "$ini")
    w=$(sed -n 's/^imWidth=//p' "$ini"); h=$(sed -n 's/^imHeight=//p' "$ini")
    last=$((n / 2 + 1))
    rm -rf "$WORK/bags/$SEQ" "$WORK/samples/$SEQ.tmp"
    PYTHONPATH=$ROOT "$PY" -m assoc_logger_ros mot2bag "$DATA/$SEQ" \
        --det "$DATA/$SEQ/det/yolox_x_ablation.txt" --out "$WORK/bags/$SEQ" --with-gt \
        --last-frame "$last" >/dev/null
    PYTHONPATH=$ROOT "$PY" -m assoc_logger_ros replay "$WORK/bags/$SEQ" --quiet \
        --log-dir "$WORK/samples/$SEQ.tmp" --frame-rate "$fps" --image-width "$w" \
        --image-height "$h" --log-min-free-mb 0 >/dev/null
    mv "$WORK/samples/$SEQ.tmp" "$WORK/samples/$SEQ"
    echo "$SEQ: frames 1..$last -> $(wc -l <"$WORK/samples/$SEQ/manifest.jsonl") samples"
done
