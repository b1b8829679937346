"""Verification and analysis code that runs from a source checkout, not from the wheel.

* ``verification.mirrors``: Python mirrors of the TLA+ specs in ``specs/``,
  their cfg parser, breadth-first explorer and manifest reader
  (``python -m verification.mirrors check``, ``make mirrors``).
* ``verification.trace``: export of state-machine runs as lifecycle traces
  (``python -m verification.trace validate|tla``).
* ``verification.distribution``: how evenly the routing schemes spread key
  families (``python -m scripts.distribution_report``).

This package imports ``awa``; nothing in ``awa`` imports it.
"""
