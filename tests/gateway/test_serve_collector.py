"""The cycle collector while the gateway serves: a big router's tick does not set it off."""

from __future__ import annotations

import gc

from gateway.serve import YOUNG_GENERATION, collector_for_serving


def test_a_big_routers_tick_runs_no_collection_while_serving() -> None:
    """A tick's worth of live rows (12,000 containers) costs no collection while serving, and
    the collector's settings are as before once serving ends."""
    thresholds = gc.get_threshold()
    runs: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            runs.append(info["generation"])

    with collector_for_serving():
        assert gc.get_threshold()[0] == YOUNG_GENERATION
        assert gc.get_freeze_count() > 0  # what was alive when serving began
        gc.callbacks.append(count)
        try:
            tick = [{"name": f"<pppoe-user{i}>", "rates": [i, i]} for i in range(6000)]
        finally:
            gc.callbacks.remove(count)
        assert len(tick) == 6000
        del tick
    assert runs == []
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0
