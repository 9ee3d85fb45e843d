"""Contract tests against real recorded api.kie.ai traffic (tests/fixtures/NOTICE)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kierouter import ImageRequest

from kierouter_example import CARD, WanProvider

RECORDING = json.loads((Path(__file__).parent / "fixtures" / "wan-27-image.json").read_text())
EXCHANGES: list[dict[str, Any]] = RECORDING["exchanges"]
CREATE = next(e for e in EXCHANGES if e["path"] == "/api/v1/jobs/createTask")
READS = [e for e in EXCHANGES if e["path"] == "/api/v1/jobs/recordInfo"]
provider = WanProvider()


def test_translation_matches_the_recorded_request() -> None:
    """The canonical request for the recorded job produces exactly the body KIE accepted."""
    recorded = CREATE["request"]
    request = ImageRequest(
        prompt=recorded["input"]["prompt"], aspect_ratio="1:1", resolution="2K", seed=0
    )
    assert provider.prepare(CARD, request, seed=request.seed).body == recorded


def test_recorded_create_answer_gives_the_task_id() -> None:
    """parse_create reads the task id from the recorded answer."""
    assert provider.parse_create(CREATE["response"]["data"]) == CREATE["response"]["data"]["taskId"]


def test_recorded_status_reads_parse() -> None:
    """Recorded polls parse as pending until the last, which carries the result URL."""
    task_id = CREATE["response"]["data"]["taskId"]
    states = [provider.parse_status(e["response"]["data"], task_id=task_id) for e in READS]
    assert [s.state for s in states] == ["pending"] * (len(READS) - 1) + ["success"]
    final = states[-1]
    assert final.urls == tuple(
        json.loads(READS[-1]["response"]["data"]["resultJson"])["resultUrls"]
    )
    assert final.completed_ms is not None and final.created_ms is not None


def test_callback_with_the_recorded_shape_parses() -> None:
    """A Market callback carries recordInfo's data; it parses to the same final status."""
    data = READS[-1]["response"]["data"]
    status = provider.parse_callback(
        {"code": 200, "msg": "Playground task completed", "data": data}
    )
    assert status.state == "success" and status.task_id == data["taskId"]
