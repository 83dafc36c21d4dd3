"""Tracking core: ByteTrack, Kalman filter, matching, appearance memory, diagnostics."""
