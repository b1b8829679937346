"""How evenly routing spreads keys: key families, coverage and chi-square.

Used by tests/test_routing_distribution.py, scripts/distribution_report.py
and the ADR.  Everything is deterministic (seeded), so a figure printed once
is reproducible.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from awa.routing.schemes import RoutingScheme

# --- key families ---------------------------------------------------------------

_FIRST = ["ana", "ben", "chen", "dara", "eli", "fatima", "gus", "hana", "ivan", "jo", "kofi", "lena",
          "mika", "nora", "omar", "pia", "quinn", "rosa", "sven", "tara", "uma", "vik", "wen", "yara"]
_LAST = ["smith", "garcia", "kim", "okafor", "novak", "silva", "tanaka", "muller", "haddad", "ivanova",
         "brown", "nguyen", "rossi", "kowalski", "dubois", "khan"]
_DOMAINS = ["example.com", "mail.test", "corp.example", "shop.example.org"]
# Every character here is 1 mod 4 ('A' = 65, 'E' = 69, ..., '5' = 53): keys
# built from them differ only in bits 2 and above of each byte.
HIGH_BIT_ALPHABET = "AEIMQUYaeimquy159"


def sequential_keys(count: int) -> list[str]:
    return [f"customer-{i}" for i in range(count)]


def uuid_keys(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def email_keys(count: int, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.randrange(1000)}@{rng.choice(_DOMAINS)}"
        for _ in range(count)
    ]


def high_bit_keys(count: int, seed: int = 3) -> list[str]:
    """Keys whose bytes differ only above the two lowest bits ("order-1" vs "order-5")."""
    rng = random.Random(seed)
    return ["order-" + "".join(rng.choice(HIGH_BIT_ALPHABET) for _ in range(6)) for _ in range(count)]


KEY_FAMILIES: dict[str, Callable[[int], list[str]]] = {
    "sequential": sequential_keys,
    "uuid": uuid_keys,
    "email": email_keys,
    "high-bit": high_bit_keys,
}


# --- statistics ----------------------------------------------------------------


def _regularized_gamma_q(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): series below a+1, continued fraction above."""
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        denom = a
        for _ in range(10_000):
            denom += 1
            term *= x / denom
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    # Modified Lentz evaluation of the continued fraction for Q.
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return min(1.0, h * math.exp(log_prefix))


def chi_square_p_value(statistic: float, degrees_of_freedom: int) -> float:
    """Probability of a chi-square at least this large if buckets were uniform."""
    if degrees_of_freedom <= 0:
        return 1.0
    return _regularized_gamma_q(degrees_of_freedom / 2, statistic / 2)


@dataclass(frozen=True)
class Uniformity:
    buckets: int
    counts: tuple[int, ...]
    chi_square: float
    p_value: float

    @property
    def used(self) -> int:
        return sum(1 for c in self.counts if c)

    @property
    def max_over_mean(self) -> float:
        mean = sum(self.counts) / self.buckets
        return max(self.counts) / mean if mean else 0.0


def uniformity(indexes: Sequence[int], buckets: int) -> Uniformity:
    counts = [0] * buckets
    for i in indexes:
        counts[i] += 1
    expected = len(indexes) / buckets
    chi = sum((c - expected) ** 2 / expected for c in counts) if expected else 0.0
    return Uniformity(buckets, tuple(counts), chi, chi_square_p_value(chi, buckets - 1))


# --- partition x shard coverage --------------------------------------------------


def shards_per_partition(
    scheme: RoutingScheme, keys: Sequence[object], partitions: int, shards: int
) -> list[set[int]]:
    """For each partition, the set of enqueue shards its keys land on."""
    parts = scheme.partitions_for_keys(keys, partitions)
    shs = scheme.shards_for_keys(keys, shards)
    reached: list[set[int]] = [set() for _ in range(partitions)]
    for p, s in zip(parts, shs):
        reached[p].add(s)
    return reached


def coverage_grid(
    scheme: RoutingScheme, keys: Sequence[object], max_partitions: int = 16, max_shards: int = 16
) -> dict[tuple[int, int], tuple[int, int]]:
    """(partitions, shards) -> (fewest, most) shards reached by one partition's keys."""
    partition_lists = {p: scheme.partitions_for_keys(keys, p) for p in range(1, max_partitions + 1)}
    shard_lists = {s: scheme.shards_for_keys(keys, s) for s in range(1, max_shards + 1)}
    grid: dict[tuple[int, int], tuple[int, int]] = {}
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dev dependency
        np = None
    for p, parts in partition_lists.items():
        for s, shs in shard_lists.items():
            if np is not None:
                cells = np.bincount(np.asarray(parts) * s + np.asarray(shs), minlength=p * s)
                per_partition = (cells.reshape(p, s) > 0).sum(axis=1)
                grid[(p, s)] = (int(per_partition.min()), int(per_partition.max()))
            else:
                reached: list[set[int]] = [set() for _ in range(p)]
                for pi, si in zip(parts, shs):
                    reached[pi].add(si)
                grid[(p, s)] = (min(map(len, reached)), max(map(len, reached)))
    return grid
