"""ROS-free tools over sample directories: inspect, validate, filter, prune, merge, report."""
