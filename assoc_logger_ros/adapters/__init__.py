"""Thin adapters: ROS messages, the rclpy node, rosbag replay."""
