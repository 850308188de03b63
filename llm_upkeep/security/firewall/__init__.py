"""Firewall: is an LLM port open to any source? From `nft -j list ruleset`, `iptables-save`, `ufw status`.

The question asked of a ruleset is narrow: "a NEW TCP connection to port P arrives on a non-loopback
interface from an arbitrary address: is it accepted?" Each rule is judged against that packet:

* yes     - it matches every such packet (e.g. ``tcp dport 11434``),
* no      - it matches none (``iif lo``, ``ct state established,related``, another port, other family),
* some    - it matches only some sources (``ip saddr 10.0.0.0/8``, an ipset): an accept there opens the
            port to those sources only; a drop there leaves everyone else to the next rule,
* unknown - an expression we cannot judge (opaque ``xt`` matches of iptables-nft without iptables-save).

Base chains at the input hook are walked in order, following jump/goto/return; a verdict of one base
chain is final only when it drops (accepted packets go on to the next base chain at that hook), which
is also how iptables-nft tables and native nftables tables combine. IPv4 and IPv6 are judged
separately; the port is "open" when either family lets the packet in.

Docker publishes ports by DNAT in PREROUTING and forwards them, so INPUT (and ufw, which lives there)
never sees those packets: a DNAT to an LLM port is reported on its own.

Nothing here changes the firewall: the listings are read-only commands (or saved files).

One file per tool and per step: model.py (what every listing is parsed into), nftables.py,
iptables.py and ufw.py (one parser per tool), evaluate.py (the walk that judges a port),
docker.py (DNAT publishes), listings.py (reading the commands or files), assess.py (findings).
"""

from llm_upkeep.security.firewall.assess import (
    assess_firewall,
)
from llm_upkeep.security.firewall.docker import (
    DockerPublish,
    find_docker_publishes,
)
from llm_upkeep.security.firewall.evaluate import (
    PortVerdict,
    Walk,
    evaluate_port,
)
from llm_upkeep.security.firewall.iptables import (
    parse_iptables_save,
)
from llm_upkeep.security.firewall.listings import (
    Listings,
    build_rulesets,
    read_listings,
    run_listing,
)
from llm_upkeep.security.firewall.model import (
    BUILTIN_CHAINS,
    IPTABLES_HOOKS,
    LOCAL_IFACES,
    XT_NEUTRAL,
    XT_NEVER_NEW,
    XT_TABLES,
    Chain,
    FirewallParseError,
    Match,
    Rule,
    Ruleset,
)
from llm_upkeep.security.firewall.nftables import (
    iptables_managed_tables,
    parse_nft_json,
)
from llm_upkeep.security.firewall.ufw import (
    UfwRule,
    UfwStatus,
    evaluate_ufw,
    parse_ufw_status,
)

__all__ = [
    "BUILTIN_CHAINS",
    "Chain",
    "DockerPublish",
    "FirewallParseError",
    "IPTABLES_HOOKS",
    "LOCAL_IFACES",
    "Listings",
    "Match",
    "PortVerdict",
    "Rule",
    "Ruleset",
    "UfwRule",
    "UfwStatus",
    "Walk",
    "XT_NEUTRAL",
    "XT_NEVER_NEW",
    "XT_TABLES",
    "assess_firewall",
    "build_rulesets",
    "evaluate_port",
    "evaluate_ufw",
    "find_docker_publishes",
    "iptables_managed_tables",
    "parse_iptables_save",
    "parse_nft_json",
    "parse_ufw_status",
    "read_listings",
    "run_listing",
]
