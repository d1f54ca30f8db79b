"""The goals of issue 7, checked against one run's figures.

Latency goals are set for PostgreSQL at 1,000,000 results on the 2-core machine; on
another size or database the verdict is shown but marked as indicative.
"""

from __future__ import annotations

import json
from pathlib import Path

P95_GOAL_MS = 100
RATIO_GOAL = 0.8
EXPORT_ROWS_PER_S_GOAL = 20_000
FLAT_EXPORT_MB = 2
GOAL_ROWS = 1_000_000
# Timing noise: the portal's page counts as "not slower" within this factor of the admin's.
SIDE_BY_SIDE_TOLERANCE = 1.10


def previous_run(directory: Path, *, rows: int) -> dict | None:
    """The newest earlier run in `directory` at another size with page figures."""
    for path in sorted(directory.glob("*.json"), reverse=True):
        try:
            earlier = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if earlier.get("rows") not in (None, rows) and earlier.get("pages"):
            return {"file": path.name, "rows": earlier["rows"], "pages": earlier["pages"]}
    return None


def _verdict(ok: bool, *, indicative: bool = False) -> str:
    text = "met" if ok else "NOT met"
    return f"{text} (indicative)" if indicative else text


def evaluate(out: dict, *, previous: dict | None = None) -> list[dict]:
    goals: list[dict] = []
    at_goal_size = out["rows"] >= GOAL_ROWS and out["database"]["vendor"] == "postgresql"
    polling = out.get("polling")
    if polling:
        goals.append(
            {
                "goal": f"polling >= {RATIO_GOAL} of C/L",
                "measured": f"{polling['results_per_s']}/s of {polling['limit_per_s']}/s = {polling['ratio']}",
                "verdict": _verdict((polling["ratio"] or 0) >= RATIO_GOAL),
            }
        )
        goals.append(
            {
                "goal": "one token request for the whole polling run",
                "measured": str(polling["token_requests"]),
                "verdict": _verdict(polling["token_requests"] == 1),
            }
        )
        goals.append(
            {
                "goal": "polling memory flat from 1/10 to all due results",
                "measured": f"{polling['memory_small_mb']} MB -> {polling['memory_large_mb']} MB (RSS peak)",
                "verdict": _verdict(polling["memory_flat"]),
            }
        )
    pages = out.get("pages") or {}
    for who, label in (("staff", "staff list and search pages"), ("admin", "admin changelists")):
        measured = [p for p in pages.values() if p.get("who") == who and p.get("available")]
        missing = [p for p in pages.values() if p.get("who") == who and not p.get("available")]
        if not measured:
            if missing:
                goals.append({"goal": f"p95 < {P95_GOAL_MS} ms: {label}", "measured": "not available yet",
                              "verdict": "-"})  # fmt: skip
            continue
        over = [p for p in measured if p["p95_ms"] >= P95_GOAL_MS]
        worst = max(measured, key=lambda p: p["p95_ms"])
        text = f"{len(measured) - len(over)} of {len(measured)} under; worst {worst['label']}: {worst['p95_ms']} ms"
        if missing:
            text += f"; {len(missing)} not available"
        goals.append(
            {
                "goal": f"p95 < {P95_GOAL_MS} ms: {label}",
                "measured": text,
                "verdict": _verdict(not over, indicative=not at_goal_size),
                "over": [p["key"] for p in over],
            }
        )
    if pages:
        if previous:
            changed = [
                key
                for key, page in pages.items()
                if page.get("available")
                and previous["pages"].get(key, {}).get("available")
                and previous["pages"][key].get("queries") != page.get("queries")
            ]
            goals.append(
                {
                    "goal": "same query count at any size",
                    "measured": (
                        f"compared with {previous['rows']:,} rows ({previous['file']}): "
                        + (f"differs for {', '.join(changed)}" if changed else "all the same")
                    ),
                    "verdict": _verdict(not changed),
                }
            )
        else:
            goals.append(
                {
                    "goal": "same query count at any size",
                    "measured": "no earlier run at another size in the output directory",
                    "verdict": "-",
                }
            )
    export = (out.get("export") or {}).get("export")
    small = (out.get("export") or {}).get("export_small")
    if export and export.get("available"):
        goals.append(
            {
                "goal": f"export > {EXPORT_ROWS_PER_S_GOAL:,} rows/s",
                "measured": f"{export['rows_per_s']:,} rows/s ({export['rows']:,} rows)",
                "verdict": _verdict(export["rows_per_s"] > EXPORT_ROWS_PER_S_GOAL, indicative=not at_goal_size),
            }
        )
        if small and small.get("available"):
            flat = export["tracemalloc_peak_mb"] <= small["tracemalloc_peak_mb"] + FLAT_EXPORT_MB
            goals.append(
                {
                    "goal": "export streams (memory flat)",
                    "measured": (
                        f"{small['tracemalloc_peak_mb']} MB at {small['rows']:,} rows -> "
                        f"{export['tracemalloc_peak_mb']} MB at {export['rows']:,} rows"
                    ),
                    "verdict": _verdict(flat),
                }
            )
    side = out.get("side_by_side") or {}
    compared = {k: v for k, v in side.items() if v["portal"] and v["admin"]}
    if compared:
        slower = [
            k for k, v in compared.items() if v["portal"]["p95_ms"] > v["admin"]["p95_ms"] * SIDE_BY_SIDE_TOLERANCE
        ]
        goals.append(
            {
                "goal": "portal list not slower than the admin changelist",
                "measured": (f"slower on: {', '.join(slower)}" if slower else f"not slower on {len(compared)} lists"),
                "verdict": _verdict(not slower),
            }
        )
    return goals
