"""What the demo prints at the end: where to click in the Prefect UI, and the summary it writes
to demo-summary.json.
"""

from __future__ import annotations

from typing import Any

from llm_upkeep.demo.settings import FAULTY, RUN_CHAIN, TTFT_ALERT_S


class GuideMixin:
    """For Demo: reads ``ui_url``, ``outcomes``, ``artifacts``, ``children`` and ``logs_dir``."""

    def guide(self) -> str:
        u = self.ui_url
        lines = ["", "=" * 78, f"llm-upkeep demo: the Prefect UI is at {u}", "=" * 78, "What to look at:"]
        lines.append(f"  1. Deployments  {u}/deployments")
        lines.append("     every deployment of prefect.yaml, each with its schedule (cron and timezone);")
        lines.append("     scheduled-restart is listed but inactive until you enable it.")
        dh = next((o for o in self.outcomes if o.deployment == "daily-health" and o.run_id), None)
        if dh:
            lines.append(f"  2. The daily-health run  {u}/runs/flow-run/{dh.run_id}")
            lines.append("     open its Artifacts tab: the health report. The healthy server is ok; the")
            lines.append(
                f"     planted fault on {FAULTY} shows as a TTFT alert (> {TTFT_ALERT_S:g} s) with a dry-run restart."
            )
        if self.artifacts:
            lines.append(f"  3. Artifacts  {u}/artifacts  (the latest of each):")
            for a in self.artifacts:
                hint = "  <- benchmark comparison" if "bench" in a["key"] and "compar" in a["key"] else ""
                if a["key"].startswith("model-evaluation"):
                    hint = "  <- candidate vs production"
                lines.append(f"       {u}/artifacts/key/{a['key']}  [{a['type']}]{hint}")
        lines.append("  4. Slack: the lines starting with [slack] above are what the Slack receiver got.")
        chain = [o for o in self.outcomes if o.deployment in RUN_CHAIN and o.run_id]
        if chain:
            lines.append(
                "  5. The model chain (pull, checksums, staging benchmark, approval, promotion; rollback):"
            )
            for o in chain:
                lines.append(f"       {u}/runs/flow-run/{o.run_id}  {o.deployment}: "
                             + (o.result.split(" (")[0] if o.result else o.state_name))  # fmt: skip
        waiting = [o for o in self.outcomes if o.state == "PAUSED"]
        for o in waiting:
            lines.append(
                f"  *  {o.deployment} is waiting for approval: {u}/runs/flow-run/{o.run_id} -> Resume"
            )
        bad = [o for o in self.outcomes if not o.ok and o.state != "SKIPPED"]
        if bad:
            lines.append("Runs that did not complete: " + ", ".join(f"{o.deployment} ({o.state_name or o.state})"
                                                                   for o in bad))  # fmt: skip
        lines.append(f"Logs of the processes: {self.logs_dir}")
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        return {
            "ui_url": self.ui_url,
            "api_url": self.api_url,
            "state_dir": str(self.state_dir),
            "config": str(self.config_path),
            "runs": [o.__dict__ for o in self.outcomes],
            "artifacts": self.artifacts,
            "slack_messages": len(self.slack_lines),
            "pids": {c.name: c.proc.pid for c in self.children},
        }
