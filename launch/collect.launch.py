"""Run the assoc_tracker node, optionally next to ``ros2 bag play --clock BAG``.

    ros2 launch assoc_logger_ros collect.launch.py log_dir:=/data/assoc seg_enable:=true \
        detections:=/camera/detections masks:=/camera/instances bag:=/data/run1

Every node parameter is a launch argument (empty = not given: the params file, then the
environment variable, then the schema default apply). The argument -> parameter mapping lives in
``assoc_logger_ros.ros.launch_args`` (tested without launch installed).
"""

from __future__ import annotations  # noqa: I001 (ruff takes launch/ for first-party)

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from assoc_logger_ros.ros import launch_args


def _actions(context: LaunchContext) -> list:
    args = {name: LaunchConfiguration(name).perform(context)
            for name, _, _ in launch_args.launch_arguments()}
    actions = [Node(
        package='assoc_logger_ros', executable='tracker_node', name=launch_args.NODE_NAME,
        namespace=args['namespace'], output='screen', emulate_tty=True,
        parameters=launch_args.node_parameters(args),
        remappings=launch_args.remappings(args))]
    cmd = launch_args.bag_command(args)
    if cmd is not None:
        actions.append(ExecuteProcess(cmd=cmd, output='screen', name='bag_play'))
    return actions


def generate_launch_description() -> LaunchDescription:
    """One DeclareLaunchArgument per setting and extra argument, then the node (+ player)."""
    declared = [DeclareLaunchArgument(name, default_value=default, description=desc)
                for name, default, desc in launch_args.launch_arguments()]
    return LaunchDescription([*declared, OpaqueFunction(function=_actions)])
