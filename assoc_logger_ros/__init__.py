"""Track objects with ByteTrack + appearance memory and record association samples.

The core (``config``, ``frame``, ``tracking``, ``recording``, ``pipeline``) never imports ROS;
``ros`` holds the thin rclpy node, ``bag`` the bag I/O and replay, ``messages`` the
codec both share.
"""

__version__ = '0.1.0'
