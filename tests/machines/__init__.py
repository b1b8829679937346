"""Hypothesis state machines that replay the TLA+ invariants on PostgreSQL."""
