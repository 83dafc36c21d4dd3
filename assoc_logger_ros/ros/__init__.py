"""The rclpy side: the tracker node, its QoS, launch arguments and a bag player (imports rclpy)."""
