"""rosbag2 I/O without a ROS runtime: reading, writing and replaying bags through the Pipeline."""
