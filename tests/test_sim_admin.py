"""The admin API under /_sim/ and scenario TOML files."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import kierouter as kr
from kierouter.sim import Emulator, Scenario, load_scenario

BODY = {"model": "seedream/4.5-text-to-image", "input": {"prompt": "x", "quality": "basic"}}


async def test_admin_api_drives_the_emulator(emu: Emulator, http: httpx.AsyncClient) -> None:
    """configure, inject, advance, tasks, stats and reset work over HTTP without a key."""
    admin = httpx.AsyncClient(base_url=emu.base_url)
    ok = await admin.post("/_sim/configure", json={"model": "seedream", "fail_rate": 1.0,
                                                   "fail_code": "500", "credits": 50})  # fmt: skip
    body = {**BODY, "callBackUrl": "http://127.0.0.1:9/cb?job=batch-7"}
    task_id = (await http.post("/api/v1/jobs/createTask", json=body)).json()["data"]["taskId"]
    await admin.post("/_sim/advance", json={"seconds": 1000})
    (task,) = (await admin.get("/_sim/tasks")).json()
    await admin.post("/_sim/inject", json={"kind": "code_455", "paths": ["credit"], "count": 1})
    maintenance = (await http.get("/api/v1/chat/credit")).json()
    stats = (await admin.get("/_sim/stats")).json()
    await admin.post("/_sim/reset", json={"credits": 10})
    after = (await admin.get("/_sim/stats")).json()
    await admin.aclose()
    assert ok.json() == {"ok": True}
    assert task["taskId"] == task_id and task["state"] == "fail"
    assert task["job_key"] == "batch-7" and task["model"] == BODY["model"]
    assert maintenance["code"] == 455
    assert stats["created"] == {BODY["model"]: 1} and stats["balance"] == 50
    assert stats["status_reads"] == 0 and stats["rejected"] == {"455": 1}
    assert after["created_total"] == 0 and after["balance"] == 10


async def test_admin_api_rejects_bad_settings(emu: Emulator) -> None:
    """Unknown settings, fault kinds and paths answer 400 naming them."""
    async with httpx.AsyncClient(base_url=emu.base_url) as admin:
        bad_setting = await admin.post("/_sim/configure", json={"speed": 3})
        bad_model = await admin.post("/_sim/configure", json={"model": "x", "fail_rat": 1})
        bad_kind = await admin.post("/_sim/inject", json={"kind": "meteor"})
        bad_path = await admin.post("/_sim/inject", json={"kind": "http_500", "paths": ["nowhere"]})
        bad_rate = await admin.post("/_sim/inject", json={"kind": "http_500", "rate": 2})
    assert "speed" in bad_setting.json()["error"]
    assert bad_model.status_code == 400
    assert "meteor" in bad_kind.json()["error"]
    assert "nowhere" in bad_path.json()["error"]
    assert bad_rate.status_code == 400


async def test_status_reads_are_counted(emu: Emulator, http: httpx.AsyncClient) -> None:
    """Every status read, known task or not, is counted in stats."""
    task_id = (await http.post("/api/v1/jobs/createTask", json=BODY)).json()["data"]["taskId"]
    for _ in range(3):
        await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
    await http.get("/api/v1/mj/record-info", params={"taskId": "nope"})
    assert emu.stats()["status_reads"] == 4


SCENARIO = """
[defaults]
time_scale = 0.000001
credits = 30
hmac_key = "scenario-hmac-key"

[models."seedream"]
latency = [5, 5]
fail_rate = 1.0
fail_code = "422"

[models."*"]
price = 1.5

[[faults]]
kind = "code_550"
paths = ["create"]
count = 1
"""


async def test_scenario_file_sets_defaults_models_and_faults(tmp_path: Path) -> None:
    """A scenario sets the balance, per-model behaviour, prices and faults."""
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    async with Emulator(scenario=path) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        async with httpx.AsyncClient(base_url=emu.base_url, headers=headers) as http:
            queue_full = (await http.post("/api/v1/jobs/createTask", json=BODY)).json()
            task_id = (await http.post("/api/v1/jobs/createTask", json=BODY)).json()["data"][
                "taskId"
            ]
            emu.advance(6)
            record = await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
    assert queue_full["code"] == 550
    assert record.json()["data"]["state"] == "fail"
    assert record.json()["data"]["failCode"] == "422"
    assert emu.state.hmac_key == "scenario-hmac-key"
    assert emu.stats()["balance"] == 30


async def test_explicit_options_beat_the_scenario(tmp_path: Path) -> None:
    """Constructor options override the scenario's [defaults]."""
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    emu = Emulator(scenario=path, credits=99)
    assert emu.balance == 99 and emu.time_scale == 0.000001


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[defaults]\ntimescale = 3\n", "'timescale'"),
        ('[models."seedream"]\nfailrate = 1\n', "'failrate'"),
        ("[[faults]]\nkind = 'http_500'\nrat = 1\n", "'rat'"),
        ("[[faults]]\nkind = 'meteor'\n", "meteor"),
        ("[extras]\n", "'extras'"),
        ('[models."seedream"]\nlatency = [1]\n', "latency"),
        ('[models."acme/x"]\nfail_rate = 1\n', "acme/x.*market_models"),
        ("not toml =", "not valid TOML"),
    ],
)
def test_scenario_rejects_unknown_keys_by_name(tmp_path: Path, text: str, words: str) -> None:
    """Unknown keys and bad values raise ConfigurationError naming them."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(kr.ConfigurationError, match=words):
        load_scenario(path)


def test_scenario_from_dict() -> None:
    """A scenario can be built in code as well."""
    scenario = Scenario.from_dict({"models": {"qwen": {"fail_rate": 0.5}}})
    assert Emulator(scenario=scenario).state.config_for("qwen/text-to-image").fail_rate == 0.5


def test_configure_layers_star_family_and_model() -> None:
    """Model settings override family settings, which override "*"."""
    emu = Emulator()
    emu.configure("*", fail_rate=0.1, latency=(1, 2))
    emu.configure("qwen", fail_rate=0.2)
    emu.configure("qwen/image-edit", fail_rate=0.3)
    assert emu.state.config_for("qwen/image-edit").fail_rate == 0.3
    assert emu.state.config_for("qwen/text-to-image").fail_rate == 0.2
    assert emu.state.config_for("google/nano-banana").fail_rate == 0.1
    assert emu.state.config_for("qwen/image-edit").latency == (1.0, 2.0)


@pytest.mark.parametrize(
    ("callback", "job_key"),
    [
        ("http://127.0.0.1:9/kie/callback/batch-7%2Frow-3?token=t", "batch-7/row-3"),
        ("http://127.0.0.1:9/hooks/kie/callback/job-42", "job-42"),
        ("http://127.0.0.1:9/cb?jobKey=row-9", "row-9"),
        ("http://127.0.0.1:9/cb?token=only", None),
    ],
)
async def test_task_listing_names_the_job_from_path_or_query(
    emu: Emulator, http: httpx.AsyncClient, callback: str, job_key: str | None
) -> None:
    """The admin task list reads kierouter's ``/kie/callback/{job_key}`` path form as well as
    a ``job``-style query parameter, so a crash test can tell which jobs reached KIE."""
    await http.post("/api/v1/jobs/createTask", json={**BODY, "callBackUrl": callback})
    (task,) = (await httpx.AsyncClient(base_url=emu.base_url).get("/_sim/tasks")).json()
    assert task["job_key"] == job_key
