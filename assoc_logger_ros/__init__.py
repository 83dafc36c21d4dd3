"""Track objects with ByteTrack + appearance memory and record association samples.

The core (``config``, ``frame``, ``tracking``, ``recording``, ``pipeline``) never imports ROS;
``adapters`` hold the thin ROS node and the bag replay.
"""

__version__ = '0.1.0'
