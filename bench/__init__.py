"""Benchmarks (``make bench`` / ``python -m bench``), side by side with awa-pg.

``bench/awa_pg_side.py`` runs in its own virtualenv and imports nothing from here.
"""
