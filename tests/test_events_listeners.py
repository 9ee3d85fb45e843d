"""Events are built only when a sink would see them; every sink still gets every event."""

from __future__ import annotations

import logging

import pytest

from kierouter._events import EventBus
from kierouter._models import Event


def test_no_event_is_built_when_only_a_quiet_log_listens() -> None:
    """With just the built-in log sink and the kierouter logger above INFO, emit builds nothing."""
    logger = logging.getLogger("kierouter")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        bus = EventBus()
        assert not bus.wants("planned")
        assert bus.emit("planned", "job-1") is None
    finally:
        logger.setLevel(old)


def test_log_sink_still_logs_when_its_level_is_enabled(caplog: pytest.LogCaptureFixture) -> None:
    """With the logger at INFO the built-in sink receives and logs the event."""
    caplog.set_level(logging.INFO, logger="kierouter")
    bus = EventBus()
    assert bus.wants("created")
    event = bus.emit("created", "job-2", model="m", task_id="t")
    assert event is not None
    assert "job job-2: created m task t" in caplog.text


def test_a_registered_sink_gets_every_event_whatever_the_log_level() -> None:
    """A user's sink sees every kind, even those the log sink would drop."""
    logger = logging.getLogger("kierouter")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    seen: list[Event] = []
    try:
        bus = EventBus([seen.append])
        for kind in ("planned", "created", "polled", "finished"):
            assert bus.wants(kind)
            bus.emit(kind, "job-3")
    finally:
        logger.setLevel(old)
    assert [e.kind for e in seen] == ["planned", "created", "polled", "finished"]
