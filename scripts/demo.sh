#!/usr/bin/env bash
# Set up the environment (scripts/setup.sh) and run the main job on its built-in default:
#   bash scripts/demo.sh [demo options]   (see: bash scripts/demo.sh --help)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${ASSOC_VENV:-$ROOT/.venv}

bash "$ROOT/scripts/setup.sh"

# Keep any ROS traffic on this machine, in a domain of this run's own unless one is given.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((1 + $$ % 100))}
exec "$VENV/bin/python" -m assoc_logger_ros demo "$@"
