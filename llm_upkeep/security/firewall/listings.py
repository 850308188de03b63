"""Reading the listings: the read-only commands (or saved files) the config names, each with its
own timeout, parsed into rulesets; a listing that cannot be read or parsed becomes a note.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from llm_upkeep.redact import redact
from llm_upkeep.security.firewall.iptables import parse_iptables_save
from llm_upkeep.security.firewall.model import FirewallParseError, Ruleset
from llm_upkeep.security.firewall.nftables import iptables_managed_tables, parse_nft_json
from llm_upkeep.security.firewall.ufw import UfwStatus, parse_ufw_status


@dataclass
class Listings:
    nft: str | None = None
    iptables: str | None = None
    ufw: str | None = None
    notes: list[str] = field(default_factory=list)


def run_listing(cmd: list[str], timeout: float) -> tuple[str | None, str | None]:
    """(stdout, None) or (None, why): a read-only command with its own timeout."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return None, f"`{' '.join(cmd)}`: not installed"
    except subprocess.TimeoutExpired:
        return None, f"`{' '.join(cmd)}`: timed out after {timeout:g} s"
    except OSError as exc:
        return None, f"`{' '.join(cmd)}`: {exc.strerror}"
    if p.returncode != 0:
        err = (p.stderr or p.stdout).strip().splitlines()
        return None, f"`{' '.join(cmd)}` exited {p.returncode}: {redact(err[-1][:200]) if err else ''}"
    return p.stdout, None


def read_listings(cfg) -> Listings:
    """Saved files named in config, else the read-only commands (when allowed)."""
    out = Listings()
    for attr, path_attr, cmd in (
        ("nft", "nft_json_path", ["nft", "-j", "list", "ruleset"]),
        ("iptables", "iptables_save_path", ["iptables-save"]),
        ("ufw", "ufw_status_path", ["ufw", "status", "verbose"]),
    ):
        path = getattr(cfg, path_attr)
        if path:
            try:
                setattr(out, attr, Path(path).expanduser().read_text(encoding="utf-8"))
                out.notes.append(f"{attr}: read from {path}")
            except OSError as exc:
                out.notes.append(f"{attr}: cannot read {path}: {exc.strerror}")
        elif cfg.firewall_commands:
            text, why = run_listing(cmd, cfg.command_timeout_s)
            if text is not None:
                setattr(out, attr, text)
                out.notes.append(f"{attr}: ran `{' '.join(cmd)}`")
            else:
                out.notes.append(f"{attr}: {why}")
    return out


def build_rulesets(listings: Listings) -> tuple[list[Ruleset], UfwStatus | None, list[str]]:
    """Parse what was read; iptables-nft tables are taken from iptables-save when both are present."""
    notes: list[str] = []
    rulesets: list[Ruleset] = []
    ipt = None
    if listings.iptables is not None:
        try:
            ipt = parse_iptables_save(listings.iptables)
        except FirewallParseError as exc:
            notes.append(f"iptables-save: {exc}")
    if listings.nft is not None:
        try:
            nft = parse_nft_json(listings.nft)
        except FirewallParseError as exc:
            notes.append(f"nft: {exc}")
            nft = None
        if nft is not None:
            if ipt is not None and ipt.chains:
                ipt_tables = {t for (_f, t, _n) in ipt.chains}
                skip = {ft for ft in iptables_managed_tables(nft) if ft[0] == "ip" and ft[1] in ipt_tables}
                nft.chains = {k: v for k, v in nft.chains.items() if (k[0], k[1]) not in skip}
                if skip:
                    notes.append(
                        "iptables-nft tables judged from iptables-save (nft shows their matches opaquely)"
                    )
            rulesets.append(nft)
    if ipt is not None and ipt.chains:
        rulesets.append(ipt)
    ufw = None
    if listings.ufw is not None:
        try:
            ufw = parse_ufw_status(listings.ufw)
        except FirewallParseError as exc:
            notes.append(f"ufw: {exc}")
    return rulesets, ufw, notes
