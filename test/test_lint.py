"""Lint as tests (the ament_flake8 / ament_pep257 way): ruff with the repository's ruff.toml."""

from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGETS = ['assoc_logger_ros', 'test', 'bench', 'training', 'scripts', 'launch']


def _ruff() -> list[str]:
    """The ruff command: the module of this interpreter, else ruff on PATH."""
    try:
        import ruff  # noqa: F401
        return [sys.executable, '-m', 'ruff']
    except ImportError:
        exe = shutil.which('ruff')
        if exe is None:
            pytest.fail('ruff is not installed; run scripts/setup.sh')
        return [exe]


@pytest.mark.linter
@pytest.mark.parametrize('target', TARGETS)
def test_ruff_clean(target):
    """``ruff check`` finds nothing (pycodestyle, pyflakes, pydocstyle, import order) in target."""
    path = REPO_ROOT / target
    if not path.exists() or not any(path.rglob('*.py')):
        pytest.skip(f'{target}/ holds no Python files yet')
    out = subprocess.run([*_ruff(), 'check', '--no-cache', '--output-format=concise', target],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, f'ruff found problems:\n{out.stdout}{out.stderr}'


@pytest.mark.linter
@pytest.mark.parametrize('script', sorted(
    str(p.relative_to(REPO_ROOT)) for p in [*REPO_ROOT.glob('scripts/*.sh'), REPO_ROOT / '.ci/run']
    if p.is_file()))
def test_shell_script_parses(script):
    """``bash -n`` accepts each shell script (a syntax error would only show up in CI)."""
    out = subprocess.run(['bash', '-n', script], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=30, check=False)
    assert out.returncode == 0, out.stderr
