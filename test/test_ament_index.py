"""The installed package is found through ament_index, with its data files and entry points.

scripts/setup.sh installs the package (not editable) into the venv, which is a ROS prefix; a stale
install means scripts/setup.sh was not run after package files changed.
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros

REPO_ROOT = Path(__file__).resolve().parents[1]


def _share() -> Path:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory('assoc_logger_ros'))
    except PackageNotFoundError:
        pytest.fail('assoc_logger_ros is not in the ament index; run scripts/setup.sh')


def test_share_directory_has_current_manifest():
    """The share directory holds the same package.xml as the working tree."""
    installed = _share() / 'package.xml'
    assert installed.is_file()
    assert installed.read_text() == (REPO_ROOT / 'package.xml').read_text(), \
        'installed package.xml is stale; run scripts/setup.sh'


def test_share_directory_has_launch_and_config_files():
    """Every launch/*.launch.py and config/*.yaml of the tree is installed under share/."""
    share = _share()
    wanted = sorted(REPO_ROOT.glob('launch/*.launch.py')) + sorted(REPO_ROOT.glob('config/*.yaml'))
    missing = [str(p.relative_to(REPO_ROOT)) for p in wanted
               if not (share / p.relative_to(REPO_ROOT)).is_file()]
    assert not missing, f'not installed (run scripts/setup.sh): {missing}'


def test_resource_marker_registered():
    """The ament resource index lists assoc_logger_ros as a package."""
    from ament_index_python.packages import get_packages_with_prefixes

    assert 'assoc_logger_ros' in get_packages_with_prefixes()


def test_console_scripts_installed():
    """The pip route puts the console scripts beside the venv's python."""
    from ament_index_python.packages import get_package_prefix

    prefix = Path(get_package_prefix('assoc_logger_ros'))
    if prefix.resolve() != Path(sys.prefix).resolve():
        pytest.skip(f"package installed in {prefix}, not in this interpreter's prefix")
    for name in ('tracker_node', 'assoc_logger'):
        assert (prefix / 'bin' / name).is_file(), f'{name} missing in {prefix}/bin'


def test_venv_stays_behind_a_sourced_overlay(tmp_path):
    """A new interpreter keeps a sourced overlay (colcon install/) in front of the venv prefix."""
    overlay = str(tmp_path / 'install')
    env = dict(os.environ, AMENT_PREFIX_PATH=overlay)
    code = 'import os; print(os.environ["AMENT_PREFIX_PATH"])'
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    parts = out.stdout.strip().split(os.pathsep)
    assert parts[0] == overlay
    assert sys.prefix in parts
