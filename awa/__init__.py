"""awa: partitioned queues on a PostgreSQL job queue.

The public surface is re-exported here. Each block below belongs to one layer;
keep imports in layer order (routing -> storage -> clients -> worker).
"""

from __future__ import annotations

from awa.errors import AwaError, DatabaseUnavailable, MigrationError, ValidationError

# --- routing (pure functions) ---
# --- storage / clients ---
# --- worker runtime ---

__version__ = "0.1.0"
