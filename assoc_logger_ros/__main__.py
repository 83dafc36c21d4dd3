"""Entry point for ``python -m assoc_logger_ros``."""

import sys

from assoc_logger_ros.cli import main

sys.exit(main())
