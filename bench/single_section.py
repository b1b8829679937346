"""The ``single`` section of ``python -m bench``: runs, summary, targets, table.

Every round measures every config on every side, in an order that alternates
from round to round; each ratio is taken round by round (both runs seconds
apart) and the median over rounds is reported.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench import single as single_bench
from bench.harness import fmt_ms, fmt_rate, fmt_ratio

SIDES = ("ours", "awa_pg")
# Targets of issue 21 (32 producers, same run, medians of rounds).
TARGET_VS_PLAIN = 0.5  # at width >= 8
TARGET_VS_AWA_PG = 2.0  # every width
TARGET_P99_VS_PLAIN = 3.0  # ours p99 / plain p99 at most
TARGET_W8_VS_W1 = 3.0


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def plan(cfgs: list[single_bench.Config], rnd: int) -> list[tuple[str, single_bench.Config]]:
    """One round's runs: for every (mode, producers) the two plain baselines, then
    each config's sides; side order and group order alternate by round."""
    out: list[tuple[str, single_bench.Config]] = []
    groups: dict[tuple[str, int], list[single_bench.Config]] = {}
    for cfg in cfgs:
        groups.setdefault((cfg.mode, cfg.producers), []).append(cfg)
    keys = list(groups) if rnd % 2 == 0 else list(reversed(groups))
    for key in keys:
        members = groups[key]
        base = members[0]
        plain = [("plain", base), ("plain_notify", base)]
        out.extend(plain if rnd % 2 == 0 else plain[::-1])
        for i, cfg in enumerate(members):
            sides = SIDES if (rnd + i) % 2 == 0 else SIDES[::-1]
            out.extend((side, cfg) for side in sides)
    return out


def run(runner: Any, args: Any, progress: Any, errors: list[str]) -> dict[str, Any]:
    cfgs = single_bench.configs(args.single_full, args.quick, args.single_widths)
    runs: list[dict[str, Any]] = []
    for rnd in range(args.single_rounds):
        for side, cfg in plan(cfgs, rnd):
            label = f"single r{rnd + 1} {cfg.name if side in SIDES else f'{cfg.mode} p{cfg.producers}'} {side}"
            if side == "awa_pg" and not runner.available("awa_pg"):
                continue
            progress.note(label)
            res = measure(runner, args, side, cfg)
            runs.append({"round": rnd, "side": side, "config": cfg.name, **_config_fields(cfg), "result": res})
            if not res.get("ok"):
                errors.append(f"single {label}: {res.get('error')}")
            elif res.get("errors"):
                errors.append(f"single {label}: {res['errors']} failed inserts, first: {res.get('first_error')}")
            progress.step(f"{label}: {fmt_rate(res.get('jobs_per_s'))}/s")
    return {"configs": [c.name for c in cfgs], "runs": runs, "summary": summarise(runs, cfgs)}


def steps(args: Any, awa_pg: bool) -> int:
    cfgs = single_bench.configs(args.single_full, args.quick, args.single_widths)
    groups = {(c.mode, c.producers) for c in cfgs}
    return args.single_rounds * (2 * len(groups) + len(cfgs) * (2 if awa_pg else 1))


def _config_fields(cfg: single_bench.Config) -> dict[str, Any]:
    return {"mode": cfg.mode, "producers": cfg.producers, "width": cfg.width, "keyed": cfg.keyed}


def measure(runner: Any, args: Any, side: str, cfg: single_bench.Config) -> dict[str, Any]:
    duration, warmup = args.single_duration, args.single_warmup
    server = runner.server.url
    if side == "awa_pg":
        url = runner.fresh("awa_pg")
        dbname = url.rsplit("/", 1)[-1].split("?")[0]
        cmd = {"op": "single", "database_url": url, "mode": cfg.mode, "producers": cfg.producers,
               "width": cfg.width, "keyed": cfg.keyed, "duration_s": duration, "warmup_s": warmup}
        return single_bench.timed(lambda: _checked(runner.awa_pg.run(cmd, timeout_s=120 + 4 * duration)), server, dbname)
    url = runner.fresh("ours")
    dbname = url.rsplit("/", 1)[-1].split("?")[0]
    if side == "ours":
        res = single_bench.timed(single_bench.run_ours, server, dbname, url, cfg, duration, warmup)
        if res.get("ok"):
            res["stored"] = sum(single_bench.stored_ours(url).values())
        return res
    return single_bench.timed(single_bench.run_plain, server, dbname, url, cfg, side == "plain_notify", duration, warmup)


def _checked(res: dict[str, Any]) -> dict[str, Any]:
    if not res.get("ok"):
        raise RuntimeError(res.get("error") or "awa-pg side failed")
    return {k: v for k, v in res.items() if k != "ok"}


# --- summary --------------------------------------------------------------------


def _per_round(runs: list[dict[str, Any]], field: str, **match: Any) -> dict[int, float]:
    out: dict[int, float] = {}
    for r in runs:
        if all(r.get(k) == v for k, v in match.items()) and r["result"].get("ok") and r["result"].get(field):
            out[r["round"]] = r["result"][field]
    return out


def _paired(num: dict[int, float], den: dict[int, float]) -> float | None:
    return _median([num[r] / den[r] for r in num if den.get(r)])


def summarise(runs: list[dict[str, Any]], cfgs: list[single_bench.Config]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for mode, producers in dict.fromkeys((c.mode, c.producers) for c in cfgs):
        for side in single_bench.PLAIN_SIDES:
            m = {"side": side, "mode": mode, "producers": producers}
            plain[f"{mode} p{producers} {side}"] = {
                "jobs_per_s": _median(list(_per_round(runs, "jobs_per_s", **m).values())),
                "p50_ms": _median(list(_per_round(runs, "p50_ms", **m).values())),
                "p99_ms": _median(list(_per_round(runs, "p99_ms", **m).values())),
            }
    rows: dict[str, Any] = {}
    for cfg in cfgs:
        row: dict[str, Any] = _config_fields(cfg)
        base = {"mode": cfg.mode, "producers": cfg.producers}
        for side in SIDES:
            m = {"side": side, "config": cfg.name}
            row[side] = {
                "jobs_per_s": _median(list(_per_round(runs, "jobs_per_s", **m).values())),
                "p50_ms": _median(list(_per_round(runs, "p50_ms", **m).values())),
                "p99_ms": _median(list(_per_round(runs, "p99_ms", **m).values())),
                "rounds": len(_per_round(runs, "jobs_per_s", **m)),
            }
        ours = _per_round(runs, "jobs_per_s", side="ours", config=cfg.name)
        ours_p99 = _per_round(runs, "p99_ms", side="ours", config=cfg.name)
        row["ours_vs_awa_pg"] = _paired(ours, _per_round(runs, "jobs_per_s", side="awa_pg", config=cfg.name))
        row["ours_vs_plain"] = _paired(ours, _per_round(runs, "jobs_per_s", side="plain", **base))
        row["ours_vs_plain_notify"] = _paired(ours, _per_round(runs, "jobs_per_s", side="plain_notify", **base))
        row["ours_p99_vs_plain_p99"] = _paired(ours_p99, _per_round(runs, "p99_ms", side="plain", **base))
        w1 = single_bench.Config(cfg.mode, cfg.producers, 1, cfg.keyed)
        if w1 in cfgs and cfg.width != 1:
            row["ours_vs_width_1"] = _paired(ours, _per_round(runs, "jobs_per_s", side="ours", config=w1.name))
        waits = [r["result"].get("waits", {}).get("top") for r in runs if r["side"] == "ours" and r["config"] == cfg.name]
        row["ours_waits_last_round"] = next((w for w in reversed(waits) if w), None)
        rows[cfg.name] = row
    return {"plain": plain, "configs": rows}


def targets(single: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rows = (single or {}).get("summary", {}).get("configs", {})

    def add(name: str, value: float | None, goal: str, met: bool | None) -> None:
        out.append({"target": name, "value": value, "goal": goal, "met": met})

    for name, row in rows.items():
        if row["producers"] != 32:
            continue
        v = row.get("ours_vs_awa_pg")
        add(f"single {name}: ours / awa-pg", v, f">= {TARGET_VS_AWA_PG}", None if v is None else v >= TARGET_VS_AWA_PG)
        if row["width"] >= 8:
            v = row.get("ours_vs_plain")
            add(f"single {name}: ours / plain INSERT", v, f">= {TARGET_VS_PLAIN}", None if v is None else v >= TARGET_VS_PLAIN)
        v = row.get("ours_p99_vs_plain_p99")
        add(f"single {name}: ours p99 / plain p99", v, f"<= {TARGET_P99_VS_PLAIN}", None if v is None else v <= TARGET_P99_VS_PLAIN)
        if row["width"] == 8 and row.get("ours_vs_width_1") is not None:
            v = row["ours_vs_width_1"]
            add(f"single {name}: width 8 / width 1 (ours)", v, f">= {TARGET_W8_VS_W1}", v >= TARGET_W8_VS_W1)
    return out


def markdown(single: dict[str, Any]) -> list[str]:
    summary = (single or {}).get("summary")
    if not summary:
        return []
    out = ["### Single inserts (one job, one transaction per call)", ""]
    out.append("| baseline | jobs/s | p50 ms | p99 ms |")
    out.append("|---|---:|---:|---:|")
    for name, row in summary["plain"].items():
        out.append(f"| {name} | {fmt_rate(row['jobs_per_s'])} | {fmt_ms(row['p50_ms'])} | {fmt_ms(row['p99_ms'])} |")
    out.append("")
    out.append(
        "| config | ours jobs/s | p50 / p99 ms | awa-pg jobs/s | p50 / p99 ms | ours / awa-pg | ours / plain "
        "| ours / plain+notify | p99 / plain p99 | ours / width 1 |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in summary["configs"].items():
        o, a = row["ours"], row["awa_pg"]
        out.append(
            f"| {name} | {fmt_rate(o['jobs_per_s'])} | {fmt_ms(o['p50_ms'])} / {fmt_ms(o['p99_ms'])} | "
            f"{fmt_rate(a['jobs_per_s'])} | {fmt_ms(a['p50_ms'])} / {fmt_ms(a['p99_ms'])} | "
            f"{fmt_ratio(row['ours_vs_awa_pg'])} | {fmt_ratio(row['ours_vs_plain'])} | "
            f"{fmt_ratio(row['ours_vs_plain_notify'])} | {fmt_ratio(row['ours_p99_vs_plain_p99'])} | "
            f"{fmt_ratio(row.get('ours_vs_width_1'))} |"
        )
    out.append("")
    return out


def plot(single: dict[str, Any], path: Any) -> Any:
    """Throughput against width, one line per side and routing, plain baselines dashed."""
    summary = (single or {}).get("summary")
    if not summary:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    modes = sorted({row["mode"] for row in summary["configs"].values()})
    fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 4.2), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        rows = [r for r in summary["configs"].values() if r["mode"] == mode]
        producers = 32 if any(r["producers"] == 32 for r in rows) else rows[0]["producers"]
        rows = [r for r in rows if r["producers"] == producers]
        for side, colour in (("ours", "tab:blue"), ("awa_pg", "tab:orange")):
            for keyed, style in ((True, "o-"), (False, "s--")):
                pts = sorted((r["width"], r[side]["jobs_per_s"]) for r in rows if r["keyed"] == keyed and r[side]["jobs_per_s"])
                if pts:
                    label = f"{'ours' if side == 'ours' else 'awa-pg'} {'keyed' if keyed else 'unkeyed'}"
                    ax.plot([w for w, _ in pts], [v for _, v in pts], style, color=colour, label=label)
        for side, colour in (("plain", "tab:gray"), ("plain_notify", "tab:purple")):
            value = summary["plain"].get(f"{mode} p{producers} {side}", {}).get("jobs_per_s")
            if value:
                ax.axhline(value, color=colour, linestyle=":", label=side.replace("_", " + "))
        ax.set_title(f"Single inserts, {producers} {mode} producers")
        ax.set_ylabel("jobs/s (median)")
        ax.set_xlabel("partitions (width)")
        ax.set_xscale("log", base=2)
        widths = sorted({r["width"] for r in rows})
        ax.set_xticks(widths)
        ax.set_xticklabels([str(w) for w in widths])
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
