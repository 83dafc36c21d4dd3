"""Run the assoc_tracker node, optionally next to ``ros2 bag play --clock BAG``.

    ros2 launch assoc_logger_ros collect.launch.py log_dir:=/data/assoc seg_enable:=true \
        detections:=/camera/detections masks:=/camera/instances bag:=/data/run1

Every node parameter is a launch argument (empty = not given: the params file, then the
environment variable, then the schema default apply). The argument -> parameter mapping lives in
``assoc_logger_ros.ros.launch_args`` (tested without launch installed). ``bag`` is checked
before anything starts, and when the player exits (finished or failed) the launch shuts down
with a message, so the node flushes its samples instead of waiting for a ``/clock`` forever.
``lifecycle:=true`` starts the managed node (``autostart:=true`` configures and activates it).
"""

from __future__ import annotations  # noqa: I001 (ruff takes launch/ for first-party)

from launch import LaunchContext, LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from assoc_logger_ros.ros import launch_args


def _on_player_exit(cmd: list[str]):
    def handler(event, _context) -> list:
        text = launch_args.player_exit_message(event.returncode, cmd)
        return [LogInfo(msg=text), EmitEvent(event=Shutdown(reason=text))]
    return handler


def _autostart(node) -> list:
    """Configure the managed node now and activate it once it is inactive."""
    from launch.events import matches_action
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    def change(transition: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition))
    return [RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=node, goal_state='inactive',
                entities=[change(Transition.TRANSITION_ACTIVATE)])),
            change(Transition.TRANSITION_CONFIGURE)]


def _actions(context: LaunchContext) -> list:
    args = {name: LaunchConfiguration(name).perform(context)
            for name, _, _ in launch_args.launch_arguments()}
    cmd = launch_args.bag_command(args)  # checks the bag before anything starts
    node_action = LifecycleNode if launch_args.lifecycle(args) else Node
    node = node_action(
        package='assoc_logger_ros', executable=launch_args.executable(args),
        name=launch_args.NODE_NAME, namespace=args['namespace'], output='screen',
        emulate_tty=True, parameters=launch_args.node_parameters(args),
        remappings=launch_args.remappings(args),
        # the node flushes its queued samples after SIGINT: give it 10 s (launch's default
        # is 5) before SIGTERM, which it ignores while flushing, and 10 s more before SIGKILL
        sigterm_timeout=LaunchConfiguration('sigterm_timeout', default='10'),
        sigkill_timeout=LaunchConfiguration('sigkill_timeout', default='10'))
    actions = [node]
    if launch_args.autostart(args):
        actions += _autostart(node)
    if cmd is not None:
        player = ExecuteProcess(cmd=launch_args.resolve_player(cmd), output='screen',
                                name='bag_play')
        actions += [player, RegisterEventHandler(OnProcessExit(
            target_action=player, on_exit=_on_player_exit(cmd)))]
    return actions


def generate_launch_description() -> LaunchDescription:
    """One DeclareLaunchArgument per setting and extra argument, then the node (+ player)."""
    declared = [DeclareLaunchArgument(name, default_value=default, description=desc)
                for name, default, desc in launch_args.launch_arguments()]
    return LaunchDescription([*declared, OpaqueFunction(function=_actions)])
