"""The ROS 2 workspace route: `colcon build --merge-install` of the repository works."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.ros
def test_colcon_build_found_through_ament_index(tmp_path):
    """scripts/colcon_check.sh builds a copy with colcon; ament_index finds it in install/."""
    if not (Path(sys.prefix) / 'bin' / 'colcon').is_file():
        pytest.skip(f'no colcon in {sys.prefix}/bin (scripts/setup.sh installs it)')
    env = dict(os.environ, ASSOC_VENV=sys.prefix)
    out = subprocess.run(['bash', str(REPO_ROOT / 'scripts' / 'colcon_check.sh'),
                          str(tmp_path / 'ws')],
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert 'colcon_check: OK' in out.stdout
