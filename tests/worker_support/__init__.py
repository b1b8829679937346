"""Helpers for the worker runtime tests (and the kill -9 child process)."""
