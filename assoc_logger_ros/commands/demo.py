"""Run the whole product on a generated scene: bag -> tracker -> samples -> summary and plots.

1. Generates the demo bag if it is absent: a deterministic scene of walkers and carts with
   crossings, crowds, long occlusions and fast motion (assoc_logger_ros.sim.scene), written with
   detections, instance masks, RGB images and ground truth.
2. Collects samples from it: through the real ROS node (a tracker_node process fed by rclpy)
   when rclpy and vision_msgs are importable, else with the in-code replay; it says which.
3. Prints the inspect summary and where the samples and plots are.

Example:
  python -m assoc_logger_ros demo --out /tmp/assoc_demo
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
from typing import Any

MARKER = '.assoc_demo'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``demo``."""
    parser.add_argument('--out', default='demo_out', metavar='DIR',
                        help='output folder: demo_bag/, samples/, report/ (default ./demo_out)')
    parser.add_argument('--frames', type=int, default=300, metavar='N',
                        help='frames of the generated scene (default 300, 10 s at 30 fps)')
    parser.add_argument('--seed', type=int, default=0, help='scene seed (default 0)')
    parser.add_argument('--walkers', type=int, default=10, metavar='N',
                        help='objects in view at a time (default 10)')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='bag storage (default mcap)')
    parser.add_argument('--mode', choices=('auto', 'ros', 'replay'), default='auto',
                        help='auto: the ROS node when rclpy and vision_msgs import, else replay')
    parser.add_argument('--rate', type=float, default=1.0,
                        help='ROS mode: playback speed, x real time (default 1)')
    parser.add_argument('--regenerate', action='store_true',
                        help='write the bag again even if it exists')
    parser.add_argument('--quiet', '-q', action='store_true', help='no progress output')


def ros_missing_reason() -> str | None:
    """None when the ROS runtime (rclpy, vision_msgs, sensor_msgs) imports, else why not."""
    try:
        import rclpy  # noqa: F401
        import sensor_msgs.msg  # noqa: F401
        import vision_msgs.msg  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means: use the replay
        return f'{type(err).__name__}: {err}'
    return None


def _say(text: str) -> None:
    print(f'demo: {text}', flush=True)


def make_bag(bag: Path, args: argparse.Namespace) -> None:
    """Generate the scene and write it as a bag (masks and images 10 ms after detections)."""
    from assoc_logger_ros.bag.bagio import write_scene
    from assoc_logger_ros.bag.replay import Progress
    from assoc_logger_ros.sim.scene import SceneConfig, generate_scene

    cfg = SceneConfig(seed=args.seed, num_frames=args.frames, num_walkers=args.walkers)
    scene = generate_scene(cfg)
    progress = Progress(len(scene.frames), enabled=False if args.quiet else None,
                        label='writing bag')
    write_scene(scene, bag, storage=args.storage, side_delay_ns=10_000_000, compress=True,
                on_frame=progress.update)
    progress.close(len(scene.frames))
    _say(f'wrote {bag}: {len(scene.frames)} frames, {scene.num_identities} identities, '
         f'{cfg.width}x{cfg.height} at {cfg.fps:g} fps (detections, masks, images, gt)')


def demo_settings(log_dir: Path) -> dict[str, Any]:
    """The settings the demo collects with (explicit values; the rest resolve as usual)."""
    return {'log_dir': str(log_dir), 'seg_enable': True, 'embedding_source': 'color_hist',
            'gt_topic': '/gt'}


def collect_replay(bag: Path, log_dir: Path, quiet: bool) -> str:
    """In-code replay; returns its summary."""
    from assoc_logger_ros.bag.replay import replay_bag
    from assoc_logger_ros.config import resolve

    settings = resolve(demo_settings(log_dir))
    result = replay_bag(bag, settings, warn=None if quiet else
                        (lambda line: print(line, file=sys.stderr)),
                        progress=False if quiet else None)
    return result.summary()


def collect_ros(bag: Path, log_dir: Path, rate: float, quiet: bool) -> str:
    """Start tracker_node as a process, publish the bag into it, wait, stop it."""
    import os
    import random
    import signal
    import subprocess
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    import assoc_logger_ros
    from assoc_logger_ros.bag import bagio
    from assoc_logger_ros.bag.replay import Progress, session_id_for
    from assoc_logger_ros.ros.bag_player import BagPlayer

    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 100)))
    with bagio.open_reader(bag) as reader:
        sid = session_id_for(bag, reader.start_time)
        n_det = sum(c.msgcount for c in reader.connections
                    if c.topic == bagio.TOPIC_DETECTIONS)
    params = {**demo_settings(log_dir), 'session_id': sid}
    cmd = [sys.executable, '-c',
           'import sys; from assoc_logger_ros.ros.node import main; sys.exit(main())',
           '--ros-args']
    for key, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        cmd += ['-p', f'{key}:={text}']
    _say(f'starting tracker_node (ROS_DOMAIN_ID={os.environ["ROS_DOMAIN_ID"]}, localhost only)')
    node_log = log_dir.parent / 'tracker_node.log'
    # the node process runs the same package as this one (a checkout, or the installed copy)
    env = dict(os.environ)
    pkg_root = str(Path(assoc_logger_ros.__file__).resolve().parents[1])
    env['PYTHONPATH'] = os.pathsep.join(p for p in (pkg_root, env.get('PYTHONPATH')) if p)
    with open(node_log, 'w', encoding='utf-8') as log_fh:
        proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT, env=env)
        try:
            rclpy.init()
            player_node = rclpy.create_node('assoc_demo_player')
            executor = SingleThreadedExecutor()
            executor.add_node(player_node)

            def spin(timeout: float) -> None:
                if proc.poll() is not None:
                    raise RuntimeError(f'tracker_node exited with code {proc.returncode}; '
                                       f'see {node_log}')
                executor.spin_once(timeout_sec=timeout)

            player = BagPlayer(player_node, {t: t for t in (
                bagio.TOPIC_DETECTIONS, bagio.TOPIC_MASKS, bagio.TOPIC_IMAGE, bagio.TOPIC_GT)})
            if not player.wait_for_subscribers(bag, spin, timeout_s=60.0):
                raise RuntimeError(f'tracker_node did not subscribe within 60 s; see {node_log}')
            progress = Progress(n_det, enabled=False if quiet else None, label='publishing')
            t0 = time.monotonic()
            player.play(bag, spin, rate=rate,
                        on_message=lambda _n: progress.update(player.published_detections))
            progress.close(player.published_detections)
            drained = player.wait_drained(spin, player.published_detections)
            wall = time.monotonic() - t0
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if rclpy.ok():
                rclpy.shutdown()
    status = 'all processed' if drained else 'NOT all acknowledged (see the node log)'
    return (f'ROS node: published {player.published} messages ({player.published_detections} '
            f'detection arrays) in {wall:.1f} s; {player.tracks_received} tracks messages back, '
            f'{status}; node exit code {proc.returncode}; node log {node_log}')


def run(args: argparse.Namespace) -> int:
    """Generate (if needed), collect, summarise; 0 on success."""
    import shutil

    from assoc_logger_ros.dataset.plots import report
    from assoc_logger_ros.dataset.summary import format_text, summarize

    out = Path(args.out).expanduser().resolve()
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        print(f'ERROR: {out} exists and is not a demo folder; choose another --out',
              file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text('created by python -m assoc_logger_ros demo\n')
    bag, log_dir, report_dir = out / 'demo_bag', out / 'samples', out / 'report'
    if bag.exists() and args.regenerate:
        shutil.rmtree(bag)
    if bag.exists():
        _say(f'using the existing bag {bag} (--regenerate writes a new one)')
    else:
        make_bag(bag, args)
    for old in (log_dir, report_dir):
        if old.exists():
            shutil.rmtree(old)  # a demo folder: start every run from empty samples

    mode = args.mode
    reason = ros_missing_reason()
    if mode == 'auto':
        mode = 'replay' if reason else 'ros'
    if mode == 'ros' and reason:
        print(f'ERROR: --mode ros but the ROS runtime is missing: {reason}', file=sys.stderr)
        return 1
    text = ''
    if mode == 'ros':
        _say('collecting through the ROS node (rclpy and vision_msgs found)')
        try:
            text = collect_ros(bag, log_dir, args.rate, args.quiet)
        except Exception as err:  # noqa: BLE001 - report, then fall back (auto) or fail
            print(f'ERROR: collection through the ROS node failed: {type(err).__name__}: '
                  f'{err}', file=sys.stderr)
            if args.mode == 'ros':
                return 1
            reason = 'the ROS node failed'
            mode = 'replay'
            if log_dir.exists():
                shutil.rmtree(log_dir)
    if mode == 'replay':
        why = f' ({reason})' if reason and args.mode == 'auto' else ''
        _say(f'collecting with the in-code replay{why}')
        text = collect_replay(bag, log_dir, args.quiet)
    print(text)
    print()
    stats = summarize(log_dir)
    print(format_text(stats))
    try:
        plots = report(log_dir, report_dir)
        plots_text = f'{report_dir} ({len(plots)} PNG files)'
    except ImportError as err:  # matplotlib is the optional 'report' extra
        plots_text = f'not made ({err}; pip install matplotlib)'
    print()
    _say(f'samples: {log_dir} (manifest.jsonl + sample_*.npz)')
    _say(f'plots:   {plots_text}')
    _say(f'bag:     {bag} (replay it: python -m assoc_logger_ros replay {bag} --log-dir DIR '
         '--seg-enable --embedding-source color_hist)')
    return 0
