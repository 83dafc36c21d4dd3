#!/usr/bin/env bash
# Set up the environment (scripts/setup.sh) and run the test suite with it.
#   bash scripts/test.sh                 # all tests under test/
#   bash scripts/test.sh -m 'not slow'   # extra arguments go to pytest
# The environment gets the real ROS 2 tools (setup.sh --ros-tools) where ../shared/ros2-cli exists.
# ASSOC_TEST_TIMEOUT (seconds, default 1500) bounds the whole pytest run.
# The training extras (setup.sh --train: torch CPU) are installed too: the suite trains a tiny
# association model, exports it and runs it in the tracker and the node (ASSOC_REQUIRE_TRAIN=1
# makes those tests fail, not skip, without torch).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${ASSOC_VENV:-$ROOT/.venv}

# --train: torch for the training tests. --ros-tools: the real ros2 CLI / launch_ros from
# ../shared/ros2-cli when it is there (the tests that need them skip with the reason
# otherwise). --fleet: Ray Data for test_shards_fleet (ASSOC_REQUIRE_FLEET=1: fails, not skips,
# without it). A plain setup.sh installs none of them.
bash "$ROOT/scripts/setup.sh" --train --ros-tools --fleet

cd "$ROOT"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ASSOC_REQUIRE_TRAIN=${ASSOC_REQUIRE_TRAIN:-1}
export ASSOC_REQUIRE_FLEET=${ASSOC_REQUIRE_FLEET:-1}
set +e
timeout -k 30 -s INT "${ASSOC_TEST_TIMEOUT:-1500}" \
    "$VENV/bin/python" -m pytest -q --durations=10 "$@"
rc=$?
set -e
case $rc in
    0) ;;
    5) echo 'test.sh: ERROR: pytest collected no tests' >&2; rc=1 ;;
    124) echo "test.sh: ERROR: tests ran past ${ASSOC_TEST_TIMEOUT:-1500} s" >&2 ;;
esac
exit $rc
