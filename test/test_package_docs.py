"""README.md's generated parts are current and the README keeps the commands it promises."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.linter

REPO_ROOT = Path(__file__).resolve().parents[1]


def _gen_docs():
    path = REPO_ROOT / 'scripts' / 'gen_docs.py'
    spec = importlib.util.spec_from_file_location('gen_docs', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_params_table_is_generated_text():
    """The README parameters table equals what scripts/gen_docs.py generates from config.py."""
    gen = _gen_docs()
    text = (REPO_ROOT / 'README.md').read_text(encoding='utf-8')
    assert gen.splice(text, gen.params_table()) == text, \
        'README parameters table is stale; run: python scripts/gen_docs.py'


def test_params_table_lists_every_setting():
    """Each setting of config.all_specs() has exactly one row in the generated table."""
    from assoc_logger_ros.config import all_specs

    table = _gen_docs().params_table()
    for spec in all_specs():
        assert table.count(f'| `{spec.name}` |') == 1, spec.name


def test_quick_start_commands_exist():
    """The README's two commands are in it and their scripts exist."""
    text = (REPO_ROOT / 'README.md').read_text(encoding='utf-8')
    for script in ('scripts/demo.sh', 'scripts/test.sh'):
        assert f'bash {script}' in text
        assert (REPO_ROOT / script).is_file()
    assert '<!-- BEGIN sample-schema -->' in text and '<!-- END sample-schema -->' in text
