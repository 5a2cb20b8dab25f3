"""One writer among replicas: kopf peering, from the operator's environment.

RIGHTSIZER_PEERING_NAME       the ClusterKopfPeering object (the chart creates it); empty:
                              standalone (one replica). Set, it wins over ``--standalone``.
RIGHTSIZER_PEERING_PRIORITY   this replica's priority; empty: a random one per process.
RIGHTSIZER_PEERING_LIFETIME   seconds a silent peer counts as alive (60)

kopf peering is priority-based, not a lease: the replica with the highest priority acts, the
others pause; replicas with EQUAL priorities all pause and warn. A random priority per
process (1 .. 2**31-1) makes a tie practically impossible without configuring each replica.
Peering is mandatory once named: without the peering object a replica stays paused rather
than act on its own. A replica that stops cleanly removes itself and another resumes at
once; one that dies is presumed gone after its lifetime.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass

import kopf

PRIORITY_RANGE = (1, 2**31 - 1)


@dataclass(frozen=True)
class PeeringConfig:
    name: str | None = None
    priority: int = 0
    lifetime: int = 60

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> PeeringConfig:
        env = os.environ if env is None else env
        name = (env.get("RIGHTSIZER_PEERING_NAME") or "").strip() or None
        priority_text = (env.get("RIGHTSIZER_PEERING_PRIORITY") or "").strip()
        priority = int(priority_text) if priority_text else random.randint(*PRIORITY_RANGE)
        return cls(
            name=name,
            priority=priority,
            lifetime=int(env.get("RIGHTSIZER_PEERING_LIFETIME") or 60),
        )


def configure(settings: kopf.OperatorSettings, config: PeeringConfig) -> None:
    """Peer through ``config.name`` (mandatory), or leave kopf's settings as they are."""
    if config.name is None:
        return
    settings.peering.name = config.name
    settings.peering.priority = config.priority
    settings.peering.lifetime = config.lifetime
    settings.peering.mandatory = True
    settings.peering.standalone = False
