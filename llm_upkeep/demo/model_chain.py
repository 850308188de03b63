"""What the demo's model chain did: evaluate-model's promotion and rollback-model's undo, read
from the switch history and the decision the models core recorded.
"""

from __future__ import annotations

from typing import Any

from llm_upkeep.demo.runs import RunOutcome
from llm_upkeep.demo.settings import CANDIDATE, HEALTHY, PROD_MODEL, RUN_CHAIN


class ModelChainMixin:
    """For Demo: reads ``state_dir``, ``config_path`` and ``llm``; sets ``_promoted``."""

    def model_history(self) -> list[Any]:
        """Production's model switches, as the models core records them (state_dir/models/<endpoint>)."""
        from llm_upkeep.models.active import read_history

        return read_history(self.state_dir / "data" / "models" / HEALTHY)

    def model_result(self, o: RunOutcome) -> str:
        """One line on what evaluate-model or rollback-model changed, read from the switch history
        and the decision it recorded (nothing for the other flows)."""
        if o.deployment not in RUN_CHAIN or o.state != "COMPLETED":
            return ""
        switches = self.model_history()[o.history_from :]
        if o.deployment == "evaluate-model":
            promoted = next((r for r in switches if r.action == "promote" and r.ok), None)
            undone = next((r for r in switches if r.action == "auto-rollback"), None)
            if promoted is not None and undone is None:
                self._promoted = True
                return (f"promoted {promoted.to_version} on {HEALTHY} ({PROD_MODEL} now serves it, answering "
                        f"after {promoted.seconds or 0:.1f} s; {self.decision_note(o)})")  # fmt: skip
            if undone is not None:
                return f"the promotion failed its probe and was rolled back to {undone.to_version}"
            return f"not promoted ({self.decision_note(o)})"
        back = next((r for r in switches if r.action == "rollback"), None)
        if back is None:
            return "no switch recorded"
        from llm_upkeep.sim.ollama_store import store_digests

        # The backup tag a rollback copies back, by the version name it was pulled as.
        names = {"sha256:" + hx: n for n, hx in store_digests(self.llm.store).items()
                 if ":upkeep-" not in n and n != PROD_MODEL}  # fmt: skip
        version = names.get(back.to_digest or "", back.to_version)
        return (f"rolled {HEALTHY} back to {version} (kept as {back.to_version}) in {back.seconds or 0:.1f} s"
                if back.ok else f"rollback to {back.to_version} did not answer")  # fmt: skip

    def decision_note(self, o: RunOutcome) -> str:
        from llm_upkeep.config import load_config
        from llm_upkeep.models.evaluate import load_decision

        try:
            d = load_decision(load_config(self.config_path), HEALTHY, o.run_id or "", CANDIDATE)
        except Exception:  # the line is a courtesy; the run's own state says whether it worked
            d = None
        if d is None:
            return "no decision recorded"
        note = d.note.split(" (")[0]  # the policy's reason without the run ids
        return f"{d.by} approval: {note}" if d.approved else f"{d.by}: {note}"
