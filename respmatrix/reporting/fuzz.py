"""The differential-fuzzing section of the Markdown report: every unexplained difference with
the script that reproduces it, and the registry entries the fuzzer saw explaining others."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

FAMILY = "fuzz"


def _reply(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 160 else text[:157] + "..."


def fuzz_section(doc: dict[str, Any]) -> list[str]:
    """Markdown lines for the fuzz results of ``doc`` (none if it has none)."""
    results = [r for r in doc["results"] if r["family"] == FAMILY]
    if not results:
        return []
    run = doc.get("fuzz", {})
    lines = ["", "## Differential fuzzing", ""]
    if run:
        lines.append(
            f"Seed {run.get('seed')}, {run.get('examples_run', '?')} examples and "
            f"{run.get('steps_run', '?')} steps in {run.get('elapsed_s', '?')} s over "
            f"{', '.join(run.get('families', []))} (RESP "
            f"{', '.join(str(p) for p in run.get('protocols', []))})"
            + (", stopped by the budget" if run.get("stopped_by_budget") else "")
            + "."
        )
        lines.append("")
    fails: dict[str, dict[str, Any]] = {}
    for result in results:
        if result["outcome"] == "fail":
            fails.setdefault(result["case"], result)
    lines.append(f"### Unexplained differences ({len(fails)})")
    lines.append("")
    if not fails:
        lines.append("None: every difference met is explained by the registry.")
    for case, result in sorted(fails.items()):
        detail = result["detail"]
        reproduced = {True: "reproduced by replay", False: "NOT reproduced by replay"}.get(
            detail.get("reproduced"), "not replayed"
        )
        lines += [f"#### `{case}` ({result['protocol']}, seen {detail.get('seen', 1)}x, "
                  f"{reproduced})", ""]  # fmt: skip
        for group in detail.get("groups", []):
            lines.append(f"- {', '.join(group['engines'])}: `{_reply(group['reply'])}`")
        lines += ["", "```", detail.get("script", "").rstrip("\n"), "```", ""]
    explained: dict[str, dict[str, Any]] = defaultdict(lambda: {"engines": set(), "count": 0})
    for result in results:
        if result["outcome"] in ("divergent", "unsupported") and result["divergence"]:
            item = explained[result["divergence"]]
            item["engines"].add(result["engine"])
            item["outcome"] = result["outcome"]
            item["count"] = max(item["count"], result["detail"].get("count", 0))
    if explained:
        lines += ["", "### Differences explained by the registry", "",
                  "| entry | outcome | engines | steps |", "|---|---|---|---|"]  # fmt: skip
        for entry, item in sorted(explained.items()):
            lines.append(
                f"| `{entry}` | {item['outcome']} | {', '.join(sorted(item['engines']))} | "
                f"{item['count']} |"
            )
    return lines
