"""Distribution of keys over shards and partitions (the correlated-hash defect).

Key sets are fixed and seeded, so these checks are deterministic; thresholds
are loose enough for any sound hash and tight enough to catch a collapse.
"""

from __future__ import annotations

import math
from functools import lru_cache

import pytest

from awa.routing import (
    AWA_COMPAT,
    CORRELATED_VERIFICATION_ONLY,
    XXH3,
    shard_for_ordering_key,
    partition_for_ordering_key,
)
from verification.distribution import (
    KEY_FAMILIES,
    chi_square_p_value,
    coverage_grid,
    high_bit_keys,
    sequential_keys,
    shards_per_partition,
    uniformity,
)

KEYS_20K = sequential_keys(20_000)


@lru_cache(maxsize=None)
def family_keys(family: str) -> tuple[str, ...]:
    return tuple(KEY_FAMILIES[family](20_000))


def test_default_scheme_partitions_reach_every_shard_at_4x4() -> None:
    reached = shards_per_partition(AWA_COMPAT, KEYS_20K, partitions=4, shards=4)
    assert [len(r) for r in reached] == [4, 4, 4, 4]


def test_correlated_scheme_pins_each_partition_to_one_shard_at_4x4() -> None:
    reached = shards_per_partition(CORRELATED_VERIFICATION_ONLY, KEYS_20K, partitions=4, shards=4)
    assert [len(r) for r in reached] == [1, 1, 1, 1]
    # ... and a different shard per partition: partition i is shard i.
    assert reached == [{0}, {1}, {2}, {3}]


@pytest.mark.parametrize("scheme", [AWA_COMPAT, XXH3])
def test_independent_schemes_cover_every_cell_up_to_16x16(scheme: object) -> None:
    grid = coverage_grid(scheme, KEYS_20K)
    assert len(grid) == 256
    short = {cell: got for cell, got in grid.items() if got[0] != cell[1]}
    assert short == {}


def test_correlated_scheme_reaches_shards_over_gcd_in_every_cell() -> None:
    grid = coverage_grid(CORRELATED_VERIFICATION_ONLY, KEYS_20K)
    for (p, s), (fewest, most) in grid.items():
        expected = s // math.gcd(p, s)
        assert fewest == most == expected, (p, s)
    # The defect appears exactly where partitions and shards share a factor.
    assert sum(1 for (p, s), (fewest, _) in grid.items() if fewest < s) == sum(
        1 for p in range(1, 17) for s in range(1, 17) if math.gcd(p, s) > 1
    )


def test_order_1_and_order_5_share_a_shard_under_the_base_hash() -> None:
    # The base hash modulo 2**k sees only the k low bits of every byte:
    # '1' (0x31) and '5' (0x35) agree in their two low bits.
    assert shard_for_ordering_key("order-1", 4) == shard_for_ordering_key("order-5", 4)
    assert shard_for_ordering_key("order-1", 8) != shard_for_ordering_key("order-5", 8)
    # The partition finalizer mixes all bits; over the high-bit family it spreads.
    parts = {partition_for_ordering_key(k, 4) for k in ("order-1", "order-5", "order-9", "order-=")}
    assert len(parts) > 1


def test_high_bit_family_collapses_base_hash_shards_but_not_partitions() -> None:
    keys = high_bit_keys(20_000)
    assert uniformity(AWA_COMPAT.shards_for_keys(keys, 4), 4).used == 1
    assert uniformity(AWA_COMPAT.shards_for_keys(keys, 16), 16).used == 4
    for scheme in (AWA_COMPAT, XXH3):
        stats = uniformity(scheme.partitions_for_keys(keys, 16), 16)
        assert stats.used == 16 and stats.p_value > 1e-3
    stats = uniformity(XXH3.shards_for_keys(keys, 16), 16)
    assert stats.used == 16 and stats.p_value > 1e-3


@pytest.mark.parametrize("family", ["sequential", "uuid", "email", "high-bit"])
@pytest.mark.parametrize("scheme", [AWA_COMPAT, XXH3])
@pytest.mark.parametrize("buckets", [2, 4, 7, 8, 16])
def test_partitions_are_uniform_for_every_family(family: str, scheme: object, buckets: int) -> None:
    keys = family_keys(family)
    stats = uniformity(scheme.partitions_for_keys(keys, buckets), buckets)
    assert stats.p_value > 1e-4, stats
    # 16 buckets of ~1250 keys: a 4-sigma bucket is still under 1.15x the mean.
    assert stats.max_over_mean < 1.15, stats


@pytest.mark.parametrize("family", ["sequential", "uuid", "email"])
@pytest.mark.parametrize("buckets", [4, 8, 16])
def test_base_hash_shards_are_uniform_for_ordinary_keys(family: str, buckets: int) -> None:
    keys = family_keys(family)
    stats = uniformity(AWA_COMPAT.shards_for_keys(keys, buckets), buckets)
    assert stats.p_value > 1e-4, stats


def test_joint_partition_shard_cells_are_uniform_only_when_independent() -> None:
    keys = family_keys("uuid")
    for scheme, expect_uniform in ((AWA_COMPAT, True), (XXH3, True), (CORRELATED_VERIFICATION_ONLY, False)):
        parts = scheme.partitions_for_keys(keys, 4)
        shards = scheme.shards_for_keys(keys, 4)
        stats = uniformity([p * 4 + s for p, s in zip(parts, shards)], 16)
        assert (stats.p_value > 1e-4) is expect_uniform, (scheme, stats)


def test_chi_square_p_values_match_tables() -> None:
    # Critical values at p = 0.05 and 0.001 from standard chi-square tables.
    for statistic, df, p in [(3.841, 1, 0.05), (7.815, 3, 0.05), (24.996, 15, 0.05), (16.266, 3, 0.001),
                             (37.697, 15, 0.001)]:
        assert chi_square_p_value(statistic, df) == pytest.approx(p, rel=2e-3)
    assert chi_square_p_value(0.0, 3) == 1.0
    assert chi_square_p_value(1e4, 3) < 1e-100


def test_uniformity_counts() -> None:
    stats = uniformity([0, 1, 1, 3], 4)
    assert stats.counts == (1, 2, 0, 1)
    assert stats.used == 3
    assert stats.chi_square == pytest.approx(2.0)
    assert stats.max_over_mean == pytest.approx(2.0)
