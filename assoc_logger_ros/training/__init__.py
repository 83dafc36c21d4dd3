"""Training the learned association model on collected samples (torch only in here).

``data`` (numpy only) turns samples into padded batches with labels; ``model``, ``train`` and
``export`` need torch (``bash scripts/setup.sh --train``). The tracker runs the exported ONNX
model through :mod:`assoc_logger_ros.tracking.learned_cost`, without torch.
"""
