"""Make a venv a usable ROS 2 prefix at every interpreter start.

scripts/setup.sh copies this file into the venv's site-packages as ``_assoc_ros_env.py`` (with
the library folders filled in) and adds ``_assoc_ros_env.pth`` that imports it. It sorts before
``ros_wheels_bootstrapper.pth`` and fixes two problems of the ROS 2 wheels:

* ``AMENT_PREFIX_PATH`` is not set, so ``ament_index_python`` finds nothing: append the venv.
* The bootstrapper re-executes Python with ``LD_LIBRARY_PATH`` set and marks that with
  ``_ROS_WHEELS_BOOTSTRAP_COMPLETE=1``; a child that inherits the marker but not the path (or the
  path of another venv) fails with ``ImportError: librcl_action.so``. Here the path itself is
  checked, and Python re-executes once (guarded by pid) when this venv's folders are missing.
"""

import os
import sys

LIB_DIRS = []  # filled in by scripts/setup.sh


def _add(var, values, front):
    """Return ``var``'s value with the missing ``values`` added (or None if none is missing)."""
    parts = [p for p in os.environ.get(var, '').split(os.pathsep) if p]
    missing = [v for v in values if v not in parts]
    if not missing:
        return None
    return os.pathsep.join(missing + parts if front else parts + missing)


def _setup():
    """Set AMENT_PREFIX_PATH; re-execute with LD_LIBRARY_PATH when this venv's libs are missing."""
    # The venv is the underlay: a sourced colcon install/ (an overlay) must stay in front.
    ament = _add('AMENT_PREFIX_PATH', [sys.prefix], front=False)
    if ament is not None:
        os.environ['AMENT_PREFIX_PATH'] = ament
    if not LIB_DIRS:
        return
    ld_path = _add('LD_LIBRARY_PATH', LIB_DIRS, front=True)
    guard = '%s:%d' % (sys.prefix, os.getpid())
    if ld_path is None or os.environ.get('_ASSOC_ROS_ENV_REEXEC') == guard:
        os.environ['_ROS_WHEELS_BOOTSTRAP_COMPLETE'] = '1'
        return
    argv = getattr(sys, 'orig_argv', None)
    if not sys.executable or not argv:
        return
    env = dict(os.environ)
    env['LD_LIBRARY_PATH'] = ld_path
    env['_ROS_WHEELS_BOOTSTRAP_COMPLETE'] = '1'
    env['_ASSOC_ROS_ENV_REEXEC'] = guard
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
    except OSError as exc:
        sys.stderr.write('assoc_logger_ros venv: could not re-execute with LD_LIBRARY_PATH: '
                         '%s\n' % exc)


_setup()
