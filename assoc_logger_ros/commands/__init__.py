"""One module per CLI command (see assoc_logger_ros.cli)."""
