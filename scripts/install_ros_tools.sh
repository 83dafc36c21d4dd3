# Install the real ROS 2 command-line tools (ros2 launch/run/param/topic/lifecycle, launch,
# launch_ros, launch_testing) into the wheels venv from ../shared/ros2-cli.
#
# Sourced by scripts/setup.sh for `setup.sh --ros-tools` (scripts/test.sh passes it); it uses
# setup.sh's helpers (say, quiet, hash_files, build_interface) and variables (ROOT, VENV, ROUTE,
# REQ, ENV_KEY). Never run for a user's environment unless asked: no registry carries these
# tools, so they come from the upstream tarballs described in ../shared/ros2-cli/README.md.
#
# Steps (idempotent, stamp $VENV/.assoc-ros-tools-stamp):
#   1. extract every tarball into $VENV/.build/ros2-cli;
#   2. pip install --no-deps --no-build-isolation each Python package (one pip call);
#   3. the pure-Python dependencies pinned in requirements/ros_tools.in (+ constraints.txt);
#   4. composition_interfaces (launch_ros imports it) and, where no wheel provides it,
#      lifecycle_msgs (ros2 lifecycle), built with cmake like vision_msgs.
# Environment: ASSOC_ROS_TOOLS_SRC (default <repo>/../shared/ros2-cli).

# Python packages inside the tarballs, in install order (dependencies first).
ROS_TOOLS_PACKAGES=(
    rosidl_runtime_py
    launch/launch launch/launch_xml launch/launch_yaml launch/launch_testing
    launch/launch_pytest
    ros2cli/ros2cli ros2cli/ros2pkg ros2cli/ros2run ros2cli/ros2node ros2cli/ros2param
    ros2cli/ros2topic ros2cli/ros2service ros2cli/ros2interface ros2cli/ros2lifecycle
    launch_ros/launch_ros launch_ros/ros2launch launch_ros/launch_testing_ros
)
# Interface packages built with cmake (rcl_interfaces tarball); lifecycle_msgs only if missing.
ROS_TOOLS_INTERFACES=(composition_interfaces lifecycle_msgs)

install_ros_tools() {
    local src=${ASSOC_ROS_TOOLS_SRC:-$ROOT/../shared/ros2-cli}
    local stamp=$VENV/.assoc-ros-tools-stamp
    if [ "$ROUTE" = system ]; then
        if command -v ros2 >/dev/null 2>&1; then
            say "--ros-tools: the sourced ROS 2 provides ros2/launch; nothing to install"
        else
            say "--ros-tools: WARNING: the sourced ROS 2 has no ros2 command (install ros-$ROS_DISTRO-ros2cli)"
        fi
        return 0
    fi
    if [ ! -d "$src" ]; then
        say "--ros-tools: $src not found; the tests that need ros2/launch_ros will skip"
        rm -f "$stamp"
        return 0
    fi
    src=$(cd "$src" && pwd)
    local tarballs key
    tarballs=$(find "$src" -maxdepth 1 -name '*.tar.gz' | LC_ALL=C sort)
    [ -n "$tarballs" ] || { say "--ros-tools: no tarballs in $src; skipping"; return 0; }
    key=$( {
        echo "$ENV_KEY"
        for t in $tarballs; do printf '%s ' "$(basename "$t")"; sha256sum <"$t"; done
        hash_files "$ROOT/scripts/install_ros_tools.sh" "$REQ/ros_tools.in" "$REQ/constraints.txt"
    } | sha256sum | cut -c1-32)
    if [ "${ASSOC_SETUP_FORCE:-0}" != 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then
        return 0
    fi
    local t0 build pkgs p name
    t0=$(date +%s)
    say "installing the real ROS 2 tools from $src (about a minute)"
    rm -f "$stamp"
    build=$VENV/.build/ros2-cli
    rm -rf "$build"
    mkdir -p "$build"
    for t in $tarballs; do
        tar -xzf "$t" -C "$build"
    done
    pkgs=()
    for p in "${ROS_TOOLS_PACKAGES[@]}"; do
        if [ -f "$build/$p/setup.py" ]; then
            pkgs+=("$build/$p")
        else
            say "--ros-tools: $p not in the tarballs; skipped"
        fi
    done
    quiet ros-tools-deps "$VENV/bin/python" -m pip install --disable-pip-version-check \
        -c "$REQ/constraints.txt" -r "$REQ/ros_tools.in"
    quiet ros-tools-pip "$VENV/bin/python" -m pip install --disable-pip-version-check \
        --no-deps --no-build-isolation --no-index "${pkgs[@]}"
    for name in "${ROS_TOOLS_INTERFACES[@]}"; do
        if [ "$name" = lifecycle_msgs ] && "$VENV/bin/python" -c 'import lifecycle_msgs.srv' \
            >/dev/null 2>&1 && [ ! -f "$VENV/share/lifecycle_msgs/.assoc-built" ]; then
            continue  # a wheel provides it
        fi
        [ -d "$build/rcl_interfaces/$name" ] || { say "--ros-tools: $name not found; skipped"; continue; }
        build_interface "$name" "$build/rcl_interfaces/$name"
        [ "$name" != lifecycle_msgs ] || touch "$VENV/share/lifecycle_msgs/.assoc-built"
    done
    rm -rf "$build"
    quiet ros-tools-check "$VENV/bin/python" -c \
        'import launch, launch_ros.actions, launch_testing, ros2cli, ros2run, ros2launch'
    quiet ros-tools-ros2 "$VENV/bin/ros2" pkg prefix launch_ros
    echo "$key" >"$stamp"
    say "ROS 2 tools installed ($(($(date +%s) - t0)) s): $VENV/bin/ros2"
}
