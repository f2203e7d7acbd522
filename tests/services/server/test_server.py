"""The server's loop survives a runner that fails (its robot is reported once), and stops cleanly."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from server_harness import T0, Harness, ListPlan

from robohost.errors import ConfigError
from robohost.services.server.clock import SimulatedClock
from robohost.services.server.server import Server


class ExhaustedPlan(ListPlan):
    """A calendar that knows no dates this late."""

    def planned(self, start: datetime, end: datetime) -> list:  # type: ignore[override]
        raise ConfigError("the XSHG calendar ends on 2026-12-31")


def test_a_failing_runner_is_reported_once_and_the_loop_goes_on(harness: Harness) -> None:
    runner = harness.runner(ExhaustedPlan())
    clock = SimulatedClock(T0, T0 + timedelta(hours=3))
    server = Server(lambda _workers: [runner], clock, logging.getLogger("robohost.test"), tick_s=600)
    server.serve()
    assert server.ticks >= 18, "the loop kept turning through three simulated hours"
    assert harness.alerts.kinds() == ["runner_error"]
    assert "XSHG" in harness.alerts[0][1]["error"]
    assert not runner.lease.held, "stopping releases the lease"
