"""Message handling shared by node and replay: CDR codec, message <-> Frame, stamp joins."""
