#!/usr/bin/env bash
# Check the ROS 2 workspace route inside the set-up environment: copy the repository into a
# temporary workspace, `colcon build --merge-install` it with the venv's colcon (from PyPI), and
# check that the result is found through ament_index from install/ (and tracker_node sits in
# lib/assoc_logger_ros for `ros2 run`). Needs scripts/setup.sh to have run.
#   bash scripts/colcon_check.sh [WORKDIR]   (default: a new folder under /tmp, removed afterwards)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${ASSOC_VENV:-$ROOT/.venv}
[ -x "$VENV/bin/colcon" ] || { echo "colcon_check: no colcon in $VENV; run scripts/setup.sh" >&2; exit 1; }

if [ $# -ge 1 ]; then
    WS=$1; KEEP=1
else
    WS=$(mktemp -d /tmp/assoc-colcon.XXXXXX); KEEP=0
fi
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WS"; }
trap cleanup EXIT

mkdir -p "$WS/src/assoc_logger_ros"
# The working tree's files (tracked and untracked, not ignored); no git: everything but builds.
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$WS/src/assoc_logger_ros" 2>/dev/null || true)
else
    (cd "$ROOT" && tar --exclude=.venv --exclude=build --exclude=install --exclude=log --exclude=.git -cf - .) \
        | tar -xf - -C "$WS/src/assoc_logger_ros"
fi
# vision_msgs is already in the venv; the workspace holds only this package.
rm -rf "$WS/src/assoc_logger_ros/third_party"

export PATH=$VENV/bin:$PATH
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
cd "$WS"
if ! colcon --log-base "$WS/log" build --merge-install --base-paths src \
        --build-base "$WS/build" --install-base "$WS/install" \
        --event-handlers console_direct- >"$WS/colcon.out" 2>&1; then
    tail -n 60 "$WS/colcon.out" >&2
    echo 'colcon_check: colcon build failed' >&2
    exit 1
fi

# shellcheck disable=SC1091
set +u; source "$WS/install/setup.bash"; set -u
python - "$WS/install" <<'PY'
import os
import sys
from pathlib import Path

from ament_index_python.packages import get_package_prefix, get_package_share_directory

install = Path(sys.argv[1]).resolve()
prefix = Path(get_package_prefix('assoc_logger_ros')).resolve()
share = Path(get_package_share_directory('assoc_logger_ros'))
assert prefix == install, f'ament_index found assoc_logger_ros in {prefix}, not {install}'
assert (share / 'package.xml').is_file(), share
for name in ('tracker_node', 'assoc_logger'):
    exe = install / 'lib' / 'assoc_logger_ros' / name
    assert exe.is_file() and os.access(exe, os.X_OK), f'{exe} missing (ros2 run needs it)'
print(f'colcon_check: OK: assoc_logger_ros found through ament_index at {prefix}')
PY
