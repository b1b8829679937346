"""PNG plots of a benchmark result (matplotlib, from the ``bench`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def throughput_vs_width(results: dict[str, Any], path: Path) -> Path | None:
    producer = results.get("producer", {}).get("summary", {})
    e2e = results.get("e2e", {}).get("summary", {})
    if not producer and not e2e:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    sides = (("ours", "ours", "tab:blue", "o-"), ("awa_pg", "awa-pg", "tab:orange", "s--"))

    ax = axes[0]
    for side, label, colour, style in sides:
        points = sorted(
            (row["width"], row[side]["jobs_per_s"])
            for row in producer.values()
            if row.get("routing") == "index" and row.get(side, {}).get("jobs_per_s")
        )
        if points:
            ax.plot([w for w, _ in points], [v for _, v in points], style, color=colour, label=f"{label} (index routed)")
        single = producer.get("single", {}).get(side, {}).get("jobs_per_s")
        if single:
            ax.axhline(single, color=colour, alpha=0.4, linestyle=":", label=f"{label} single queue")
    ax.set_title("Producer path: COPY enqueue")
    ax.set_ylabel("jobs/s (median)")
    _width_axis(ax)

    ax = axes[1]
    # One line per side and number of worker processes (e2e summary: {processes: {width: row}}).
    shared = ("ours_shared", "ours, shared slots", "tab:green", "^-")  # ADR 0014; width 1 is ours
    for processes, table in sorted(e2e.items(), key=lambda item: int(item[0])):
        for side, label, colour, style in (*sides, shared):
            points = sorted(
                (int(width), row[side]["jobs_per_s"])
                for width, row in table.items()
                if row.get(side, {}).get("jobs_per_s")
            )
            if side == shared[0] and points and table.get("1", {}).get("ours", {}).get("jobs_per_s"):
                points.insert(0, (1, table["1"]["ours"]["jobs_per_s"]))
            if points:
                marker_style = style if processes == "1" else style.replace("-", ":").replace("::", ":")
                ax.plot(
                    [w for w, _ in points],
                    [v for _, v in points],
                    marker_style,
                    color=colour,
                    alpha=1.0 if processes == "1" else 0.7,
                    label=f"{label}, {processes} process{'es' if processes != '1' else ''}",
                )
    ax.set_title("End to end: enqueue + drain no-op jobs")
    ax.set_ylabel("completed jobs/s (median)")
    _width_axis(ax)

    fig.suptitle(f"{results.get('meta', {}).get('date_utc', '')}  PostgreSQL {results.get('meta', {}).get('server_version', '')}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _width_axis(ax) -> None:
    ax.set_xlabel("partitions (width)")
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 8])
    ax.set_xticklabels(["1", "2", "4", "8"])
    ax.set_ylim(bottom=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def keyed_heatmap(landing: dict[str, Any], path: Path) -> Path | None:
    counts = landing.get("counts") if landing else None
    if not counts:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * landing["shards"], 1.4 + 0.6 * len(counts)))
    image = ax.imshow(counts, cmap="viridis", aspect="auto")
    ax.set_xticks(range(landing["shards"]))
    ax.set_yticks(range(len(counts)))
    ax.set_yticklabels(landing["physical_queues"], fontsize=8)
    ax.set_xlabel("enqueue shard")
    ax.set_ylabel("partition (physical queue)")
    for r, row in enumerate(counts):
        for c, value in enumerate(row):
            ax.text(c, r, str(value), ha="center", va="center", color="white", fontsize=7)
    verdict = "matches routing functions" if landing.get("matches_routing_functions") else "DIFFERS from routing functions"
    ax.set_title(
        f"{landing['total']} keyed jobs ({landing['distinct_keys']} keys): where they landed\n{verdict}", fontsize=9
    )
    fig.colorbar(image, ax=ax, label="jobs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
