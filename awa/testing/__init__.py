"""Helpers for verification runs: trace export of state-machine runs (``awa.testing.trace``)."""
