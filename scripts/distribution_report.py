"""Distribution report: how evenly each routing scheme spreads key families.

Run: ``.venv/bin/python -m scripts.distribution_report [--keys N]``.

For every key family (sequential ids, UUIDs, emails, keys differing only in
high bits of their bytes), every scheme and bucket count, prints the chi-square
statistic against a uniform spread, its p-value, how many buckets were used
and the fullest bucket relative to the mean; for shards and for partitions.
Then the partition x shard coverage over 1..16 x 1..16 and the joint
uniformity of (partition, shard) cells at 4 x 4.  Deterministic (seeded).
"""

from __future__ import annotations

import argparse
import math
import sys

from awa.routing import AWA_COMPAT, CORRELATED_VERIFICATION_ONLY, XXH3
from verification.distribution import KEY_FAMILIES, coverage_grid, uniformity

SCHEMES = (AWA_COMPAT, XXH3, CORRELATED_VERIFICATION_ONLY)
BUCKETS = (2, 4, 6, 8, 16, 7)


def _flag(p_value: float, used: int, buckets: int) -> str:
    if used < buckets:
        return "COLLAPSED"
    return "skewed" if p_value < 1e-3 else ""


def uniformity_table(count: int) -> list[str]:
    lines = [
        "| family | scheme | level | buckets | chi-square | p-value | used | max/mean | |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for family, make in KEY_FAMILIES.items():
        keys = make(count)
        for scheme in SCHEMES:
            for level in ("shard", "partition"):
                route = scheme.shards_for_keys if level == "shard" else scheme.partitions_for_keys
                for buckets in BUCKETS:
                    stats = uniformity(route(keys, buckets), buckets)
                    lines.append(
                        f"| {family} | {scheme.name} | {level} | {buckets} | {stats.chi_square:.1f} | "
                        f"{stats.p_value:.3g} | {stats.used} | {stats.max_over_mean:.3f} | "
                        f"{_flag(stats.p_value, stats.used, buckets)} |"
                    )
    return lines


def coverage_section(count: int) -> list[str]:
    keys = KEY_FAMILIES["sequential"](count)
    lines = [
        "| scheme | cells where every partition reaches every shard (of 256) | worst cell (p, s): fewest shards |",
        "|---|---:|---|",
    ]
    for scheme in SCHEMES:
        grid = coverage_grid(scheme, keys)
        full = sum(1 for (p, s), (fewest, _) in grid.items() if fewest == s)
        worst = min(grid.items(), key=lambda item: (item[1][0] / item[0][1], -item[0][1]))
        (p, s), (fewest, _) = worst
        lines.append(f"| {scheme.name} | {full} | ({p}, {s}): {fewest} of {s} |")
    gcd_cells = sum(1 for p in range(1, 17) for s in range(1, 17) if math.gcd(p, s) > 1)
    lines.append("")
    lines.append(f"(pairs with gcd(p, s) > 1: {gcd_cells}; the correlated scheme reaches s / gcd(p, s) shards there)")
    return lines


def joint_section(count: int) -> list[str]:
    lines = [
        "| family | scheme | (partition, shard) cells used of 16 | chi-square | p-value |",
        "|---|---|---:|---:|---:|",
    ]
    for family, make in KEY_FAMILIES.items():
        keys = make(count)
        for scheme in SCHEMES:
            parts = scheme.partitions_for_keys(keys, 4)
            shards = scheme.shards_for_keys(keys, 4)
            stats = uniformity([p * 4 + s for p, s in zip(parts, shards)], 16)
            lines.append(
                f"| {family} | {scheme.name} | {stats.used} | {stats.chi_square:.1f} | {stats.p_value:.3g} |"
            )
    return lines


def report(count: int) -> str:
    out = [f"# Routing distribution report ({count:,} keys per family)", ""]
    out += ["## Uniformity of shards and partitions", ""] + uniformity_table(count)
    out += ["", "## Partition x shard coverage, 1..16 x 1..16 (sequential keys)", ""] + coverage_section(count)
    out += ["", "## Joint (partition, shard) cells at 4 partitions x 4 shards", ""] + joint_section(count)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.distribution_report", description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20_000, help="keys per family (default 20000)")
    args = parser.parse_args(argv)
    print(report(args.keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
