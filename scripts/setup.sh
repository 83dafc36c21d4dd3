#!/usr/bin/env bash
# Set up the environment for assoc_logger_ros: idempotent, seconds on a second run.
#
#   bash scripts/setup.sh          # creates/updates .venv (or $ASSOC_VENV)
#   bash scripts/setup.sh --train  # also the training extras (requirements/train.in: torch CPU)
#   bash scripts/setup.sh --ros-tools   # also the real ros2 CLI / launch_ros from ../shared/ros2-cli
#                                       # (scripts/install_ros_tools.sh; scripts/test.sh passes it)
#   bash scripts/setup.sh --fleet  # also Ray Data (requirements/fleet.in; scripts/test.sh passes it)
#
# Route A (a sourced ROS 2 whose python3 imports rclpy and vision_msgs, ROS_DISTRO set):
#   a venv with --system-site-packages gets the missing pure-Python deps and this package.
#   If only vision_msgs is missing, third_party/vision_msgs is built into the venv with the
#   distro's own ament_cmake/rosidl.
# Route B (plain machine): the venv becomes a ROS 2 Kilted prefix from PyPI wheels pinned by
#   requirements/constraints.txt, and third_party/vision_msgs is built into it.
# Both: this package is installed non-editable (pip install --no-deps) so ament_index finds it
#   and the console scripts exist; it is re-installed whenever its files change. The executables
#   are also put in $VENV/lib/assoc_logger_ros, where `ros2 run` and launch_ros look.
#
# Environment: ASSOC_VENV (venv path, default <repo>/.venv), PYTHON (interpreter for route B,
#   default python3.11 or python3), ASSOC_SETUP_FORCE=1 (ignore the stamps),
#   ASSOC_SETUP_ROUTE=wheels|system (skip the detection).
set -euo pipefail

TRAIN=0
ROS_TOOLS=0
FLEET=0
for arg in "$@"; do
    case $arg in
        --train) TRAIN=1 ;;
        --ros-tools) ROS_TOOLS=1 ;;
        --fleet) FLEET=1 ;;
        *) printf 'setup: ERROR: unknown option %s (known: --train, --ros-tools, --fleet)\n' "$arg" >&2; exit 2 ;;
    esac
done

# Bump when a change below must rebuild existing environments (the stamp hashes this, the
# requirements and third_party/vision_msgs, not the whole script).
ENV_VERSION=2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${ASSOC_VENV:-$ROOT/.venv}
REQ=$ROOT/requirements
LOG_DIR=${TMPDIR:-/tmp}
T0=$(date +%s)

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

# Run a noisy step quietly; show its log only when it fails.
quiet() {
    local name=$1; shift
    local log
    log=$(mktemp "$LOG_DIR/assoc-setup-$name.XXXXXX.log")
    if ! "$@" >"$log" 2>&1; then
        grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -n 60 >&2
        die "step '$name' failed (full log: $log)"
    fi
    rm -f "$log"
}

hash_files() {  # sha256 over the names and contents of the given files (sorted)
    local f
    for f in $(printf '%s\n' "$@" | LC_ALL=C sort); do
        [ -f "$f" ] || continue
        printf '%s\n' "${f#"$ROOT"/}"
        sha256sum <"$f"
    done | sha256sum | cut -c1-32
}

# cmake and a C/C++ compiler build vision_msgs; install them where they are missing (as root).
need_tools() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    command -v c++ >/dev/null 2>&1 || missing+=(g++)
    command -v make >/dev/null 2>&1 || command -v ninja >/dev/null 2>&1 || missing+=(make)
    [ "${#missing[@]}" = 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing ${missing[*]} with apt-get"
        quiet apt-update apt-get update
        quiet apt-install env DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends "${missing[@]}"
    else
        die "missing build tools: ${missing[*]} (install them, e.g. apt-get install ${missing[*]})"
    fi
}

# One setup at a time per venv (several people share a checkout).
LOCK=/tmp/assoc-setup-$(printf '%s' "$VENV" | sha256sum | cut -c1-12).lock
exec 9>"$LOCK"
if ! flock -n 9; then
    say "another setup of $VENV is running; waiting for it"
    flock 9
fi

# ---------------------------------------------------------------- route detection
ROUTE=${ASSOC_SETUP_ROUTE:-}
if [ -z "$ROUTE" ]; then
    ROUTE=wheels
    if [ -n "${ROS_DISTRO:-}" ] && python3 -c 'import rclpy' >/dev/null 2>&1; then
        ROUTE=system
    fi
fi

if [ "$ROUTE" = system ]; then
    BASE_PY=$(command -v python3)
    if python3 -c 'import vision_msgs.msg' >/dev/null 2>&1; then
        NEED_VISION=0
    else
        NEED_VISION=1
    fi
else
    # A sourced ROS of another Python would leak into the wheels' venv; keep it out.
    unset PYTHONPATH CMAKE_PREFIX_PATH AMENT_PREFIX_PATH COLCON_PREFIX_PATH ROS_DISTRO \
        _ROS_WHEELS_BOOTSTRAP_COMPLETE _ASSOC_ROS_ENV_REEXEC || true
    BASE_PY=${PYTHON:-}
    if [ -z "$BASE_PY" ]; then
        BASE_PY=$(command -v python3.11 || command -v python3 || true)
    fi
    [ -n "$BASE_PY" ] || die 'no python3 found; set PYTHON=/path/to/python3.11'
    PYVER=$("$BASE_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [ "$PYVER" = 3.11 ] || die "the ROS 2 Kilted wheels need Python 3.11; $BASE_PY is $PYVER (set PYTHON=...)"
    NEED_VISION=1
fi

VISION_FILES=$(find "$ROOT/third_party/vision_msgs" -type f \( -name '*.msg' -o -name package.xml \
    -o -name CMakeLists.txt \) | LC_ALL=C sort)
ENV_KEY=$( {
    printf 'route=%s need_vision=%s venv=%s\n' "$ROUTE" "$NEED_VISION" "$VENV"
    "$BASE_PY" -c 'import sys; print(sys.version)'
    echo "env-version=$ENV_VERSION"
    hash_files $(ls "$REQ"/*.in | grep -v '/train\.in$') \
        "$REQ/constraints.txt" $VISION_FILES
} | sha256sum | cut -c1-32)
ENV_STAMP=$VENV/.assoc-env-stamp

if [ "${ASSOC_SETUP_FORCE:-0}" != 1 ] && [ -x "$VENV/bin/python" ] \
    && [ "$(cat "$ENV_STAMP" 2>/dev/null)" = "$ENV_KEY" ]; then
    ENV_OK=1
else
    ENV_OK=0
fi

# The interpreter-start hook (scripts/venv_ros_env.py, see there); rewritten only when it differs.
install_env_hook() {
    local site d libs new
    site=$(ls -d "$VENV"/lib/python3*/site-packages | head -n 1)
    LIB_DIRS=()
    if [ "$ROUTE" = wheels ] || [ "$NEED_VISION" = 1 ]; then
        LIB_DIRS+=("$VENV/lib")
        for d in "$site"/ros_*.libs; do
            [ -d "$d" ] && LIB_DIRS+=("$(cd "$d" && pwd -P)")
        done
    fi
    libs=''
    [ "${#LIB_DIRS[@]}" = 0 ] || libs=$(printf "'%s', " "${LIB_DIRS[@]}")
    new=$(sed "s|^LIB_DIRS = \[\].*|LIB_DIRS = [${libs%, }]|" "$ROOT/scripts/venv_ros_env.py")
    if [ "$new" != "$(cat "$site/_assoc_ros_env.py" 2>/dev/null)" ]; then
        printf '%s\n' "$new" >"$site/_assoc_ros_env.py.tmp"
        mv "$site/_assoc_ros_env.py.tmp" "$site/_assoc_ros_env.py"
    fi
    [ -f "$site/_assoc_ros_env.pth" ] || echo 'import _assoc_ros_env' >"$site/_assoc_ros_env.pth"
}

# Build an ament_cmake interface package (vision_msgs; composition_interfaces and lifecycle_msgs
# for --ros-tools) into the venv with cmake (ros-env.md; the wheels' include-path fix is applied
# once, when the environment is built).
build_interface() {
    local name=$1 src=$2 build gen=()
    local cmake_env=(env "AMENT_PREFIX_PATH=$VENV" "CMAKE_PREFIX_PATH=$VENV" "PATH=$VENV/bin:$PATH")
    [ "$ROUTE" = wheels ] \
        || cmake_env=(env "AMENT_PREFIX_PATH=$VENV:${AMENT_PREFIX_PATH:-}" "PATH=$VENV/bin:$PATH")
    need_tools
    build=$VENV/.build/$(basename "$src")
    rm -rf "$build"
    command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
    say "building $(basename "$src") into the venv"
    quiet "$name-configure" "${cmake_env[@]}" cmake -S "$src" \
        -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VENV/bin/python"
    quiet "$name-build" "${cmake_env[@]}" cmake --build "$build" --parallel "${ASSOC_BUILD_JOBS:-2}"
    quiet "$name-install" "${cmake_env[@]}" cmake --install "$build"
    rm -rf "$build"
}

# ---------------------------------------------------------------- environment
if [ "$ENV_OK" = 0 ]; then
    say "building the $ROUTE environment in $VENV (first run: about 2 minutes)"
    rm -f "$ENV_STAMP"
    if [ -e "$VENV" ] && ! "$VENV/bin/python" -c 'pass' >/dev/null 2>&1; then
        [ -f "$VENV/pyvenv.cfg" ] || die "$VENV exists and is not a venv; remove it or set ASSOC_VENV"
        say "$VENV is broken; recreating it"
        rm -rf "$VENV"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        if [ "$ROUTE" = system ]; then
            quiet venv "$BASE_PY" -m venv --system-site-packages "$VENV"
        else
            quiet venv "$BASE_PY" -m venv "$VENV"
        fi
    fi
    PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)
    if [ "$ROUTE" = system ]; then
        # Keep the distro's numpy etc. (its rclpy was built against them): no pins here.
        quiet pip "${PIP[@]}" -r "$REQ/runtime.in" -r "$REQ/test.in" wheel
    else
        quiet pip "${PIP[@]}" -c "$REQ/constraints.txt" -r "$REQ/runtime.in" \
            -r "$REQ/test.in" -r "$REQ/ros.in" -r "$REQ/build.in"
    fi

    install_env_hook
    if [ "$NEED_VISION" = 1 ]; then
        if [ "$ROUTE" = wheels ]; then
            # Fix 4 of ros-env.md: the wheels' cmake exports carry their build machine's paths.
            PY_INC=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
            NP_INC=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
            { grep -rlF '/opt/python/cp311-cp311' "$VENV"/share/*/cmake/ 2>/dev/null || true; } \
                | while read -r f; do
                    sed -i -e "s|/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include|$NP_INC|g" \
                        -e "s|/opt/python/cp311-cp311/include/python3.11|$PY_INC|g" "$f"
                done
        fi
        build_interface vision "$ROOT/third_party/vision_msgs"
    fi

    CHECK_ENV=(env)
    # Route B: prove that a bare start (no library path, no bootstrap marker) works.
    [ "$ROUTE" = system ] || CHECK_ENV=(env -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u LD_LIBRARY_PATH)
    quiet check-imports "${CHECK_ENV[@]}" "$VENV/bin/python" -c \
        'import rclpy, vision_msgs.msg, ament_index_python, numpy, scipy, yaml, rosbags'
    echo "$ENV_KEY" >"$ENV_STAMP"
    rm -f "$VENV/.assoc-pkg-stamp"
    say "environment ready ($(($(date +%s) - T0)) s)"
fi

[ "$ENV_OK" = 0 ] || install_env_hook

# ---------------------------------------------------------------- optional extras
# install_extras NAME WHAT REQ_FILE CHECK [PIP_ARGS...]: pip install -r REQ_FILE (with
# PIP_ARGS) and run the python CHECK, unless the venv's stamp for NAME already matches the
# environment and REQ_FILE.
install_extras() {
    local name=$1 what=$2 req=$3 check=$4 key stamp t1
    shift 4
    key=$(printf '%s %s\n' "$ENV_KEY" "$(hash_files "$req")" | sha256sum | cut -c1-32)
    stamp=$VENV/.assoc-$name-stamp
    if [ "${ASSOC_SETUP_FORCE:-0}" = 1 ] || [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
        t1=$(date +%s)
        say "installing the $what extras (requirements/$(basename "$req"))"
        quiet "$name-pip" "$VENV/bin/python" -m pip install --disable-pip-version-check \
            "$@" -r "$req"
        quiet "$name-check" "$VENV/bin/python" -c "$check"
        echo "$key" >"$stamp"
        say "$what extras ready ($(($(date +%s) - t1)) s)"
    fi
}
# --no-deps: train.in pins torch's whole closure (the CPU build, about 1 GB); torch's
# setuptools>=77 (only for building C++ extensions) would clash with the ROS build's pinned
# setuptools.
if [ "$TRAIN" = 1 ]; then
    install_extras train training "$REQ/train.in" 'import torch; torch.zeros(1)' --no-deps
fi
# Ray Data under the repository's constraints, so it cannot move the shared pins.
if [ "$FLEET" = 1 ]; then
    install_extras fleet fleet-engine "$REQ/fleet.in" 'import ray.data' -c "$REQ/constraints.txt"
fi

# ---------------------------------------------------------------- ros2 run / launch_ros layout
# pip puts console scripts in $VENV/bin; `ros2 run` and launch_ros look in
# <prefix>/lib/<package>/ (setup.cfg's install_scripts only applies under colcon): copy them
# there. On the system route, `source .venv/bin/activate` also puts the venv on the ament and
# Python paths, so the distro's own `ros2` finds the package and its modules.
install_lib_executables() {
    local libexec=$VENV/lib/assoc_logger_ros exe site
    mkdir -p "$libexec"
    for exe in $(sed -n "s/^ *'\([a-z_]*\) = assoc_logger_ros.*/\1/p" "$ROOT/setup.py"); do
        [ -f "$VENV/bin/$exe" ] || die "console script $exe missing from $VENV/bin"
        cp -f "$VENV/bin/$exe" "$libexec/$exe.tmp"
        chmod 755 "$libexec/$exe.tmp"
        mv -f "$libexec/$exe.tmp" "$libexec/$exe"
    done
    if [ "$ROUTE" = system ] && ! grep -q '# assoc_logger_ros: ros2 paths' "$VENV/bin/activate"; then
        site=$(ls -d "$VENV"/lib/python3*/site-packages | head -n 1)
        {
            echo '# assoc_logger_ros: ros2 paths (the distro ros2 finds this package and its modules)'
            echo "export AMENT_PREFIX_PATH=\"$VENV\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}\""
            echo "export PYTHONPATH=\"$site\${PYTHONPATH:+:\$PYTHONPATH}\""
        } >>"$VENV/bin/activate"
    fi
}

# ---------------------------------------------------------------- this package
PKG_FILES=$(cd "$ROOT" && find package.xml setup.py setup.cfg resource launch config assoc_logger_ros \
    -type f \( -name '*.py' -o -name '*.xml' -o -name '*.cfg' -o -name '*.yaml' -o -path 'resource/*' \) \
    -not -path '*/__pycache__/*' 2>/dev/null | LC_ALL=C sort)
PKG_KEY=$(cd "$ROOT" && hash_files $PKG_FILES)
PKG_STAMP=$VENV/.assoc-pkg-stamp
if [ "${ASSOC_SETUP_FORCE:-0}" = 1 ] || [ "$(cat "$PKG_STAMP" 2>/dev/null)" != "$PKG_KEY" ]; then
    # Build from a clean copy: setuptools' build/ in the tree would keep deleted modules.
    STAGE=$(mktemp -d "$LOG_DIR/assoc-pkg.XXXXXX")
    (cd "$ROOT" && cp --parents $PKG_FILES "$STAGE"/)
    quiet pkg-install "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps \
        --no-build-isolation --no-index --force-reinstall "$STAGE"
    rm -rf "$STAGE"
    install_lib_executables
    echo "$PKG_KEY" >"$PKG_STAMP"
    say "installed assoc_logger_ros into $VENV"
fi
[ -x "$VENV/lib/assoc_logger_ros/tracker_node" ] || install_lib_executables
if [ "$ROS_TOOLS" = 1 ]; then
    # shellcheck source=install_ros_tools.sh
    source "$ROOT/scripts/install_ros_tools.sh"
    install_ros_tools
fi
say "ready: $VENV ($ROUTE route, $(($(date +%s) - T0)) s)"
