"""package.xml is a valid format 3 manifest that declares what the code imports (rosdep keys)."""

from __future__ import annotations

import ast
from pathlib import Path
import re
import sys
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.linter

REPO_ROOT = Path(__file__).resolve().parents[1]
SCANNED = ['assoc_logger_ros', 'launch']
FIRST_PARTY = {'assoc_logger_ros'}
# Modules and folders of assoc_logger_ros/ that must stay free of ROS.
CORE = {'config.py', 'frame.py', 'pipeline.py', 'motchallenge.py', 'tracking', 'recording',
        'dataset', 'sim'}

# Python module -> rosdep key, for everything that is not a ROS package of the same name.
ROSDEP_KEYS = {
    'numpy': 'python3-numpy',
    'scipy': 'python3-scipy',
    'yaml': 'python3-yaml',
    'matplotlib': 'python3-matplotlib',
    'rosbags': 'python3-rosbags-pip',
    'onnxruntime': 'python3-onnxruntime-pip',
    'cv2': 'python3-opencv',
}
# ROS packages whose Python module has the package's name.
ROS_PACKAGES = {
    'rclpy', 'launch', 'launch_ros', 'ament_index_python', 'cv_bridge', 'message_filters',
    'rosidl_runtime_py', 'rosbag2_py', 'tf2_ros',
}


def _manifest() -> ET.Element:
    return ET.parse(REPO_ROOT / 'package.xml').getroot()


def _deps(root: ET.Element, *tags: str) -> set[str]:
    return {el.text.strip() for tag in tags for el in root.findall(tag) if el.text}


def _optional_imports(tree: ast.AST) -> set[int]:
    """Return the ids of imports in `try:` blocks that catch ImportError (optional extras)."""
    optional: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = set()
        for handler in node.handlers:
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            caught |= {t.id for t in types if isinstance(t, ast.Name)}
        if caught & {'ImportError', 'ModuleNotFoundError'}:
            for stmt in node.body:
                optional |= {id(n) for n in ast.walk(stmt)
                             if isinstance(n, (ast.Import, ast.ImportFrom))}
    return optional


def imported_modules() -> dict[str, str]:
    """Top-level modules imported by the package and launch files -> one file importing it.

    Imports guarded by ``try: ... except ImportError`` are optional extras (benchmark tools such
    as trackeval) and are not required in package.xml.
    """
    found: dict[str, str] = {}
    for folder in SCANNED:
        for path in sorted((REPO_ROOT / folder).rglob('*.py')):
            tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
            optional = _optional_imports(tree)
            for node in ast.walk(tree):
                if id(node) in optional:
                    continue
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split('.')[0]
                    found.setdefault(top, str(path.relative_to(REPO_ROOT)))
    return found


def rosdep_key(module: str) -> str | None:
    """The rosdep key for a third-party module; None for the standard library and our own."""
    if module in sys.stdlib_module_names or module in FIRST_PARTY or module == '__future__':
        return None
    if module in ROSDEP_KEYS:
        return ROSDEP_KEYS[module]
    if module in ROS_PACKAGES or module.endswith(('_msgs', '_srvs', '_interfaces')):
        return module
    raise AssertionError(f'no rosdep key known for module {module!r}; add it to ROSDEP_KEYS '
                         'in test/test_package_xml.py and an exec_depend to package.xml')


def test_format_3_and_name():
    """package.xml parses, is format 3, and names the package and version setup.py builds."""
    root = _manifest()
    assert root.tag == 'package'
    assert root.get('format') == '3'
    assert root.findtext('name') == 'assoc_logger_ros'
    setup_py = (REPO_ROOT / 'setup.py').read_text()
    version = re.search(r"version='([^']+)'", setup_py)
    assert version is not None and version.group(1) == root.findtext('version')
    assert root.findtext('export/build_type') == 'ament_python'


def test_every_import_is_an_exec_depend():
    """Each third-party or ROS module the code imports has an exec_depend (or depend)."""
    declared = _deps(_manifest(), 'exec_depend', 'depend')
    missing = {}
    for module, where in imported_modules().items():
        key = rosdep_key(module)
        if key is not None and key not in declared:
            missing[key] = where
    assert not missing, f'package.xml lacks exec_depend for {missing}'


def test_core_does_not_import_ros():
    """The core modules never import rclpy, ROS message packages or rosbags (team rule)."""
    ros_like = re.compile(r'^(rclpy|rosbags|launch|launch_ros|cv_bridge|.*_msgs)$')
    offenders = []
    for path in sorted((REPO_ROOT / 'assoc_logger_ros').rglob('*.py')):
        rel = path.relative_to(REPO_ROOT / 'assoc_logger_ros')
        if rel.parts[0] not in CORE:
            continue
        tree = ast.parse(path.read_text(encoding='utf-8'))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f'{rel}: {n}' for n in names if ros_like.match(n.split('.')[0])]
    assert not offenders, offenders


def test_test_dependencies_declared():
    """The test tools the suite runs are test_depend entries."""
    declared = _deps(_manifest(), 'test_depend', 'depend')
    assert {'python3-pytest', 'python3-hypothesis'} <= declared
