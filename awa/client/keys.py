"""Key policies on the clients: per-key concurrency limits (ADR 0020).

A mixin of :class:`~awa.client.api.ClientAPI`; every method validates its
input and runs one operation of :mod:`awa.storage.keys`, so ``Client``
returns values and ``AsyncClient`` awaitables.
"""

from __future__ import annotations

from typing import Any


class KeyPolicyAPI:
    _core: Any
    _drive: Any  # ClientAPI's

    def create_key_policy(
        self,
        queue: str,
        max_in_flight: int = 1,
        *,
        from_ordering_key: bool = False,
        look_ahead: int | None = None,
    ) -> Any:
        """Govern the logical queue ``queue`` (all its partitions): at most
        ``max_in_flight`` running jobs per concurrency key. With
        ``from_ordering_key`` a job without a ``concurrency_key`` uses its
        ordering key. An existing policy is changed instead (as
        :meth:`set_key_limit`). Returns the :class:`~awa.storage.keys.KeyPolicy`."""
        return self._drive(
            self._core.set_key_policy(queue, max_in_flight, from_ordering_key, look_ahead, True), tx=False
        )

    def set_key_limit(self, queue: str, max_in_flight: int) -> Any:
        """Change the limit of an existing policy. Raising applies at once;
        lowering applies once every key is within the new limit (until then
        it is ``pending_max`` and claims already admit under it)."""
        return self._drive(self._core.set_key_policy(queue, max_in_flight, None, None, False), tx=False)

    def settle_key_policy(self, queue: str) -> Any:
        """Apply a pending lower limit if every key is now within it."""
        return self._drive(self._core.set_key_policy(queue, None, None, None, False), tx=False)

    def key_policies(self, queue: str | None = None) -> Any:
        """Every key policy (or ``queue``'s), with its open grants."""
        return self._drive(self._core.key_policies(queue), tx=False)

    def drop_key_policy(self, queue: str) -> Any:
        """Stop governing ``queue``: its jobs run without a key limit."""
        return self._drive(self._core.drop_key_policy(queue), tx=False)
