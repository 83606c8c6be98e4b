"""Plain-text (Markdown) tables of the results, for the terminal and docs/benchmarks.md."""

from __future__ import annotations


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells])


def waves_table(result: dict) -> str:
    rows = [[r["n_apps"], r["contender"] + (" (ApplicationSets)" if r.get("shape") == "applicationsets" else ""),
             r["detect_p50_s"], r["detect_p95_s"], r["api_requests"],
             r.get("api_requests_per_wave"), r["peak_rss_mb"], r.get("module_process_peak_rss_mb"), r["cpu_s"],
             r.get("module_process_cpu_s"), r["wall_s"], r.get("load_1m_before"),
             "ok" if r["ok"] else "did not run" if r["cpu_s"] is None
             else "failed"] for r in result["rows"]]
    return table(["N apps", "contender", "detect p50 s", "detect p95 s", "API requests", "req/wave",
                  "peak RSS tree MB", "module RSS MB", "CPU s tree", "module CPU s", "wall s", "load 1m",
                  "result"], rows)


def ratios_table(result: dict) -> str:
    rows = []
    for n, pairs in result.get("ratios", {}).items():
        for pair, vals in pairs.items():
            rows.append([n, pair, vals["detect_p95_s"], vals["api_requests"], vals["peak_rss_mb"],
                         vals["cpu_s"], vals["wall_s"]])
    return table(["N apps", "ratio", "detect p95", "API requests", "peak RSS", "CPU", "wall"], rows)


def nodes_table(result: dict) -> str:
    rows = []
    for r in result["rows"]:
        first, rerun = r["first"], r.get("rerun") or {}
        loads = [x.get("load_1m_before") for x in (first, rerun) if x.get("load_1m_before") is not None]
        rows.append([r["n_nodes"], r["contender"], first["wall_s"], first["api_requests"],
                     first["api_requests_by_verb"].get("patch", 0), first["cpu_s"], rerun.get("wall_s"),
                     rerun.get("api_requests"), rerun.get("cpu_s"),
                     "/".join(f"{x:.0f}" for x in loads) if loads else None,
                     "-" if r["converged"] is None else "yes" if r["converged"]
                     else "no" + (f" (stopped at {r.get('timeout_s', 0):.0f} s)" if first.get("timed_out") else "")])
    return table(["nodes", "contender", "first wall s", "first requests", "first PATCH", "first CPU s",
                  "rerun wall s", "rerun requests", "rerun CPU s", "load 1m", "converged"], rows)


def cluster_table(result: dict) -> str:
    """First run per phase, the no-op rerun's split and their ratio (benchmarks/rerun.run_cluster)."""
    rows = [[r["phase"], r["first_s"], r["rerun_s"], r["rerun_over_first"]] for r in result.get("phases", [])]
    if rows:
        rows.append(["(rerun: ansible startup)", "", result["rerun_startup_s"], ""])
        rows.append(["all", result["first_total_s"], result["rerun_total_s"], result["rerun_over_first"]])
    text = table(["phase", "first s", "rerun s", "rerun/first"], rows)
    if "rerun_changed" in result:
        text += (f"\nrerun changed={result['rerun_changed']}; --check --diff {result['check_diff_s']} s, "
                 f"changed={result['check_diff_changed']}")
    return text + (f"\nerror: {result['error']}" if result.get("error") else "")


def rerun_table(result: dict) -> str:
    rows = []
    for r in result["rows"]:
        first, rerun = r["first"], r.get("rerun") or {}
        rows.append([r["stage"], first["wall_s"], f"{first['tasks']['ok']}/{first['tasks']['changed']}",
                     first["api_requests"], first["api_writes"], rerun.get("wall_s"),
                     f"{rerun['tasks']['ok']}/{rerun['tasks']['changed']}" if rerun else "-",
                     rerun.get("api_requests"), rerun.get("api_writes"), r.get("rerun_over_first")])
    return table(["stage", "first wall s", "first ok/changed", "first requests", "first writes", "rerun wall s",
                  "rerun ok/changed", "rerun requests", "rerun writes", "rerun/first"], rows)
