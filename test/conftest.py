"""Shared pytest set-up: keep ROS traffic on this machine, locate bench data, rclpy contexts.

At import time, before any test module can import rclpy, this sets
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a ``ROS_DOMAIN_ID`` of this run's own (1..100,
from the pid; ``ASSOC_TEST_DOMAIN_ID`` overrides it), so parallel runs do not see each other.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['ROS_DOMAIN_ID'] = os.environ.get('ASSOC_TEST_DOMAIN_ID') or str(1 + os.getpid() % 100)
if os.environ.get('ROS_DISTRO') == 'humble':
    # Humble predates ROS_AUTOMATIC_DISCOVERY_RANGE.
    os.environ['ROS_LOCALHOST_ONLY'] = '1'

REPO_ROOT = Path(__file__).resolve().parents[1]


def bench_data_dir() -> Path:
    """Return the bench data folder: ``$ASSOC_BENCH_DATA`` or ../shared/bench-data."""
    env = os.environ.get('ASSOC_BENCH_DATA')
    if env:
        return Path(env)
    return REPO_ROOT.parent / 'shared' / 'bench-data'


@functools.lru_cache(maxsize=1)
def ros_missing_reason() -> str | None:
    """None when rclpy and vision_msgs import, else why not (for skip messages)."""
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        return f'rclpy is not importable ({exc}); run scripts/setup.sh and use .venv/bin/python'
    try:
        import vision_msgs.msg  # noqa: F401
    except ImportError as exc:
        return (f'vision_msgs is not importable ({exc}); scripts/setup.sh builds it from '
                'third_party/vision_msgs')
    return None


@functools.lru_cache(maxsize=1)
def ros_tools_missing_reason() -> str | None:
    """None when the real ``ros2`` CLI and launch_ros are usable, else why not (skip message)."""
    import importlib.util
    import sys

    reason = ros_missing_reason()
    if reason:
        return reason
    source = REPO_ROOT.parent / 'shared' / 'ros2-cli'
    hint = ('scripts/test.sh installs them with scripts/setup.sh --ros-tools from '
            f'{source}' + ('' if source.is_dir() else ', which is absent here'))
    for module in ('launch', 'launch_ros', 'launch_testing', 'ros2cli', 'lifecycle_msgs'):
        if importlib.util.find_spec(module) is None:
            return f'the real ROS 2 tools are not installed ({module} missing); {hint}'
    if ros2_command() is None:
        return f'no ros2 command beside {sys.executable} or on PATH; {hint}'
    return None


def ros2_command() -> str | None:
    """The ``ros2`` command of this interpreter's environment (its bin/), else the one on PATH."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / 'ros2'
    if beside.is_file():
        return str(beside)
    return shutil.which('ros2')


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``ros``/``ros_tools`` tests without ROS/the real tools, ``bench_data`` without data."""
    for item in items:
        if item.get_closest_marker('ros_tools') is not None:
            reason = ros_tools_missing_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
        elif item.get_closest_marker('ros') is not None:
            reason = ros_missing_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
        if item.get_closest_marker('bench_data') is not None and not bench_data_dir().is_dir():
            item.add_marker(pytest.mark.skip(
                reason=f'bench data not found at {bench_data_dir()} (set ASSOC_BENCH_DATA)'))


@pytest.fixture
def bench_data() -> Path:
    """The shared benchmark data folder; skips the test when it is absent."""
    path = bench_data_dir()
    if not path.is_dir():
        pytest.skip(f'bench data not found at {path} (set ASSOC_BENCH_DATA)')
    return path


@pytest.fixture
def rclpy_context():
    """An initialised rclpy Context of the test's own, shut down afterwards; skips without ROS."""
    reason = ros_missing_reason()
    if reason:
        pytest.skip(reason)
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


@pytest.fixture(scope='session')
def tiny_model(tmp_path_factory) -> tuple[Path, Path]:
    """(model folder, sample folder): a tiny association model trained on generated scenes.

    Needs the training extras (``scripts/setup.sh --train``); skipped without torch unless
    ``ASSOC_REQUIRE_TRAIN=1`` (what scripts/test.sh sets), where a missing torch fails.
    """
    if os.environ.get('ASSOC_REQUIRE_TRAIN') != '1':
        pytest.importorskip('torch', reason='training extras not installed '
                            '(bash scripts/setup.sh --train)')
    from assoc_logger_ros.training.scene_samples import write_scene_samples
    from assoc_logger_ros.training.train import TrainConfig, train

    root = tmp_path_factory.mktemp('tiny_model')
    write_scene_samples(root / 'samples', [1, 2, 3], num_frames=50, embed_dim=16)
    train(TrainConfig(data=[str(root / 'samples')], out=str(root / 'model'), epochs=2,
                      batch_size=16, width=16, hidden=16, heads=2, progress=False),
          log=lambda line: None)
    return root / 'model', root / 'samples'


def slow_node_script(sleep_s: float) -> str:
    """``python -c`` code of a tracker node whose update sleeps ``sleep_s`` per frame.

    It prints ``BUSY`` when it starts the first frame, so a test can signal it mid-work.
    """
    return f"""
import sys, time
from assoc_logger_ros.ros import node as n
original = n.TrackerNode._process
def slow(self, joined, **kw):
    if self.frames_processed == 0:
        print('BUSY', flush=True)
    time.sleep({sleep_s})
    return original(self, joined, **kw)
n.TrackerNode._process = slow
sys.exit(n.main())
"""


def seed_loader() -> type:
    """``training/seed_loader.py``'s SeedAssocDataset, loaded from the file as the seed does."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('seed_loader',
                                                  REPO_ROOT / 'training' / 'seed_loader.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SeedAssocDataset
