"""What one variant of the load test is, and what its run found: the data the runner fills in
(``run_loadtest.py``) and the report prints (``rig_report.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Variant:
    """How the gateway runs: one process (``single``), or ``replicas`` processes in cluster
    mode sharing one redis-server (``cluster``)."""

    name: str
    replicas: int = 1

    @property
    def cluster(self) -> bool:
        return self.name == "cluster"

    @property
    def title(self) -> str:
        return f"cluster ({self.replicas} replicas)" if self.cluster else "single process"


VARIANTS: Final = ("single", "cluster")


@dataclass
class Usage:
    """CPU seconds a process used over Locust's run, and the run's wall seconds."""

    cpu: float = 0.0
    seconds: float = 0.0

    @property
    def core_percent(self) -> float:
        """The process's CPU as a percentage of one core."""
        return 100 * self.cpu / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Outcome:
    """What one variant's run found: Locust's verdict (its summary JSON) and exit code, the
    faults applied, the problems seen from outside Locust, and the figures of the processes."""

    variant: Variant = field(default_factory=lambda: Variant("single"))
    problems: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    locust_code: int | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    # Every gateway process's figures from /metrics after the run (see ``gateway_metrics``).
    metrics: list[dict[str, float]] = field(default_factory=list)
    # CPU over Locust's run: each gateway process's, and Redis's (cluster only).
    gateways: list[Usage] = field(default_factory=list)
    redis: Usage | None = None
    # Redis commands processed over Locust's run, and its memory at the end (bytes).
    redis_commands: int = 0
    redis_memory: int = 0

    @property
    def passed(self) -> bool:
        return self.locust_code == 0 and not self.problems and bool(self.verdict.get("passed"))

    def total(self, key: str) -> float:
        return sum(m.get(key, 0.0) for m in self.metrics)


def cpu_percent(usages: Sequence[Usage]) -> float:
    """The processes' CPU together, as a percentage of one core."""
    return sum(u.core_percent for u in usages)


def stream_lag_ms(outcome: Outcome) -> float | None:
    count = outcome.total("lag_count")
    return 1000 * outcome.total("lag_sum") / count if count else None
