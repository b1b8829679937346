"""Per-key concurrency: validation and the key-policy operations (no I/O).

A key policy belongs to a logical queue (every partition ``q``, ``q__p1``, ...
shares it) and holds ``max_in_flight``: at most that many running jobs per
concurrency key, counted by the database (``15_key_concurrency.sql``,
ADR 0020). A job's key is its ``concurrency_key``, else its ordering key when
the policy says ``from_ordering_key``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from awa.errors import ValidationError
from awa.storage.ops import Op, OpsBase, Query
from awa.storage.validate import check_name, is_int

MAX_CONCURRENCY_KEY_BYTES = 255
MAX_IN_FLIGHT_LIMIT = 1_000_000
MAX_LOOK_AHEAD = 100_000


def check_concurrency_key(key: Any) -> bytes | None:
    """A concurrency key as stored: bytes (a str UTF-8 encoded) or None."""
    if key is None:
        return None
    if isinstance(key, str):
        data = key.encode("utf-8", "surrogatepass")
    elif isinstance(key, (bytes, bytearray, memoryview)):
        data = bytes(key)
    else:
        raise ValidationError(f"concurrency_key must be str or bytes, got {type(key).__name__}")
    if not data:
        raise ValidationError("concurrency_key must not be empty")
    if len(data) > MAX_CONCURRENCY_KEY_BYTES:
        raise ValidationError(
            f"concurrency_key must be at most {MAX_CONCURRENCY_KEY_BYTES} bytes (got {len(data)})"
        )
    return data


def check_max_in_flight(value: Any) -> int:
    if not is_int(value) or not 1 <= value <= MAX_IN_FLIGHT_LIMIT:
        raise ValidationError(f"max_in_flight must be an integer between 1 and {MAX_IN_FLIGHT_LIMIT}, got {value!r}")
    return int(value)


def check_look_ahead(value: Any) -> int | None:
    if value is None:
        return None
    if not is_int(value) or not 1 <= value <= MAX_LOOK_AHEAD:
        raise ValidationError(f"look_ahead must be an integer between 1 and {MAX_LOOK_AHEAD}, got {value!r}")
    return int(value)


def check_policy_name(name: Any) -> str:
    name = check_name(name, "key policy")
    if "__p" in name:
        raise ValidationError(f"key policy {name!r} must name a logical queue (no '__p' partition suffix)")
    return name


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """A key policy and its open grants.

    ``max_in_flight`` is authoritative: no key holds more grants. A lowered
    limit waits in ``pending_max`` (claims already admit under it) until every
    key is within it."""

    name: str
    max_in_flight: int
    pending_max: int | None
    from_ordering_key: bool
    look_ahead: int
    keys_in_flight: int = 0
    most_in_flight: int = 0
    in_flight: int = 0

    @property
    def admits(self) -> int:
        """What a key may hold now: the lower of the limit and a pending one."""
        return self.max_in_flight if self.pending_max is None else min(self.max_in_flight, self.pending_max)


class KeyPolicyOps(OpsBase):
    def set_key_policy(
        self,
        name: str,
        max_in_flight: int | None,
        from_ordering_key: bool | None,
        look_ahead: int | None,
        create: bool,
    ) -> Op:
        """Create (``create=True``) or change a policy; ValidationError for an
        unknown one when not creating (nothing changed)."""
        name = check_policy_name(name)
        if max_in_flight is not None or create:
            max_in_flight = check_max_in_flight(max_in_flight)
        if from_ordering_key is not None and not isinstance(from_ordering_key, bool):
            raise ValidationError(f"from_ordering_key must be a bool, got {from_ordering_key!r}")
        look_ahead = check_look_ahead(look_ahead)
        res = yield Query(
            self.q("set_key_policy"),
            {
                "name": name,
                "max_in_flight": max_in_flight,
                "from_ordering_key": from_ordering_key,
                "look_ahead": look_ahead,
                "create": create,
            },
        )
        if not res.rows:
            raise ValidationError(f"unknown key policy {name!r}")
        return (yield from self.key_policies(name))[0]

    def key_policies(self, name: str | None = None) -> Op:
        if name is not None:
            name = check_policy_name(name)
        res = yield Query(self.q("key_policies"), {"name": name})
        return [KeyPolicy(*row) for row in res.rows]

    def drop_key_policy(self, name: str) -> Op:
        name = check_policy_name(name)
        res = yield Query(self.q("drop_key_policy"), {"name": name})
        if not res.rows:
            raise ValidationError(f"unknown key policy {name!r}")
        return None


def split_concurrency_keys(
    opts: Any, n_jobs: int, default: Any = None
) -> tuple[Any, list[bytes | None] | None]:
    """Take ``concurrency_key`` out of per-job opts: (the opts left for the
    enqueue path, one key per job or None when no job has one). ``default``
    is the batch's key for jobs whose opts do not name one."""
    base = check_concurrency_key(default)
    if not isinstance(opts, list) or not any(type(e) is dict and "concurrency_key" in e for e in opts):
        return opts, (None if base is None else [base] * n_jobs)
    rest: list[Any] = []
    keys: list[bytes | None] = []
    for entry in opts:
        if type(entry) is dict and "concurrency_key" in entry:
            keys.append(check_concurrency_key(entry["concurrency_key"]))
            entry = {k: v for k, v in entry.items() if k != "concurrency_key"} or None
        else:
            keys.append(base)
        rest.append(entry)
    return rest, keys
