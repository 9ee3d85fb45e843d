"""The emulator fails the way KIE documents it can: read lag after a create ("recordInfo is
null"), HTTP 200 envelopes for 401/404, Flux and MJ "create-task failed", ISO times on Flux,
the charged cost in status answers, KIE charging other than the catalogue, and result-file
faults on every family."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from kierouter._images import decode_png
from kierouter.sim import Emulator, load_scenario

MARKET = {"model": "google/nano-banana", "input": {"prompt": "a red fox", "aspect_ratio": "1:1"}}
# family -> create path, record path, create body
FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "market": ("/api/v1/jobs/createTask", "/api/v1/jobs/recordInfo", MARKET),
    "gpt4o": (
        "/api/v1/gpt4o-image/generate",
        "/api/v1/gpt4o-image/record-info",
        {"prompt": "a fox", "size": "1:1"},
    ),
    "flux": ("/api/v1/flux/kontext/generate", "/api/v1/flux/kontext/record-info", {"prompt": "x"}),
    "mj": (
        "/api/v1/mj/generate",
        "/api/v1/mj/record-info",
        {"taskType": "mj_txt2img", "prompt": "a castle", "speed": "fast"},
    ),
}


def client(emu: Emulator, **kw: Any) -> httpx.AsyncClient:
    """A client with the emulator's key."""
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    return httpx.AsyncClient(base_url=emu.base_url, headers=headers, **kw)


async def create(http: httpx.AsyncClient, family: str) -> str:
    """Create one task of ``family``; its id."""
    path, _, body = FAMILIES[family]
    answer = (await http.post(path, json=body)).json()
    assert answer["code"] == 200, answer
    task_id: str = answer["data"]["taskId"]
    return task_id


async def record(http: httpx.AsyncClient, family: str, task_id: str) -> dict[str, Any]:
    """One status read's whole envelope."""
    answer: dict[str, Any] = (
        await http.get(FAMILIES[family][1], params={"taskId": task_id})
    ).json()
    return answer


def result_urls(family: str, data: dict[str, Any]) -> list[str]:
    """The result URLs of a finished task's record."""
    if family == "market":
        urls: list[str] = json.loads(data["resultJson"])["resultUrls"]
        return urls
    if family == "gpt4o":
        return list(data["response"]["resultUrls"])
    if family == "flux":
        return [data["response"]["resultImageUrl"]]
    return [item["resultUrl"] for item in data["resultInfoJson"]["resultUrls"]]


# -- read lag and unknown ids -----------------------------------------------------------------


async def test_market_task_is_not_readable_during_the_visibility_lag(emu: Emulator) -> None:
    """Right after a create, recordInfo answers 422 "recordInfo is null" over HTTP 200; once the
    default lag (1 emulated second) has passed, the task reads as pending."""
    async with client(emu) as http:
        task_id = await create(http, "market")
        early = await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
        emu.advance(0.5)
        still = await record(http, "market", task_id)
        emu.advance(0.6)
        later = await record(http, "market", task_id)
    assert early.status_code == 200
    assert early.json() == {"code": 422, "msg": "recordInfo is null", "data": None}
    assert still["code"] == 422
    assert later["code"] == 200 and later["data"]["state"] in ("waiting", "queuing", "generating")
    assert emu.stats()["rejected"]["422"] == 2


@pytest.mark.parametrize("family", ["gpt4o", "flux", "mj"])
async def test_legacy_task_reads_as_unknown_during_the_lag(emu: Emulator, family: str) -> None:
    """The legacy families answer an invisible task as an unknown one: code 200, data null."""
    async with client(emu) as http:
        task_id = await create(http, family)
        early = await record(http, family, task_id)
        emu.advance(1)
        later = await record(http, family, task_id)
    assert early == {"code": 200, "msg": "success", "data": None}
    assert later["data"]["taskId"] == task_id and later["data"]["successFlag"] == 0


async def test_visibility_lag_is_configurable_and_scaled_by_the_clock() -> None:
    """visibility_lag is emulated seconds: 30 s hides a task for 30 ms at time_scale=1000;
    set(visibility_lag=0) makes new tasks readable at once; a task never finishes while hidden."""
    async with Emulator(time_scale=1e-6, visibility_lag=30) as emu, client(emu) as http:
        emu.configure("nano-banana", latency=(5, 5))
        hidden = await create(http, "market")
        emu.advance(29)
        during = await record(http, "market", hidden)
        emu.advance(1)
        after = await record(http, "market", hidden)
        emu.set(visibility_lag=0)
        at_once = await record(http, "market", await create(http, "market"))
    assert during["code"] == 422
    assert after["data"]["state"] == "success" and after["data"]["costTime"] == 30
    assert at_once["code"] == 200


async def test_scenario_and_admin_set_the_lag(tmp_path: Path) -> None:
    """[defaults] visibility_lag and POST /_sim/configure both set it; a bad value is refused."""
    path = tmp_path / "lag.toml"
    path.write_text("[defaults]\nvisibility_lag = 12.5\n")
    assert load_scenario(path).defaults == {"visibility_lag": 12.5}
    async with Emulator(scenario=path) as emu, httpx.AsyncClient(base_url=emu.base_url) as admin:
        assert emu.state.visibility_lag == 12.5
        ok = await admin.post("/_sim/configure", json={"visibility_lag": 3})
        bad = await admin.post("/_sim/configure", json={"visibility_lag": -1})
        assert emu.state.visibility_lag == 3
    assert ok.json() == {"ok": True}
    assert bad.status_code == 400 and "visibility_lag" in bad.json()["error"]


# -- envelopes --------------------------------------------------------------------------------


async def test_bad_key_and_unknown_path_are_http_200_envelopes(emu: Emulator) -> None:
    """401 and 404 come in HTTP 200 envelopes, as every business error KIE answers does."""
    async with httpx.AsyncClient(base_url=emu.base_url) as http:
        no_key = await http.post("/api/v1/jobs/createTask", json=MARKET)
        nowhere = await http.get("/api/v1/nano-banana/generate")
    assert (no_key.status_code, nowhere.status_code) == (200, 200)
    assert no_key.json() == {"code": 401, "msg": "You do not have access permissions", "data": None}
    assert nowhere.json()["code"] == 404 and nowhere.json()["data"] is None
    assert emu.stats()["rejected"] == {"401": 1, "404": 1}
    assert emu.stats()["created_total"] == 0


# -- failure stages and times -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "model", "stage", "flag", "status"),
    [
        ("flux", "flux-kontext", "create", 2, None),
        ("flux", "flux-kontext", "generate", 3, None),
        ("mj", "midjourney", "create", 2, None),
        ("mj", "midjourney", "generate", 3, None),
        ("gpt4o", "gpt4o-image", "create", 2, "CREATE_TASK_FAILED"),
        ("gpt4o", "gpt4o-image", "generate", 2, "GENERATE_FAILED"),
    ],
)
async def test_fail_stage_sets_the_success_flag(
    emu: Emulator, family: str, model: str, stage: str, flag: int, status: str | None
) -> None:
    """fail_stage="create" gives Flux/MJ successFlag 2 and 4o CREATE_TASK_FAILED; generation
    failures stay 3 / GENERATE_FAILED; neither is charged."""
    emu.configure(model, fail_rate=1.0, fail_stage=stage, fail_code=500)
    async with client(emu) as http:
        task_id = await create(http, family)
        emu.advance(10_000)
        data = (await record(http, family, task_id))["data"]
    assert data["successFlag"] == flag
    assert data.get("status") == status
    assert data["errorCode"] == 500
    assert emu.charges() == {"total": 0.0, "tasks": {}}


async def test_create_stage_failures_end_early() -> None:
    """A create-task failure ends within a tenth of the model's latency (but after the lag)."""
    async with Emulator(time_scale=1e-6) as emu, client(emu) as http:
        emu.configure("flux-kontext", latency=(100, 100), fail_rate=1.0, fail_stage="create")
        task_id = await create(http, "flux")
        emu.advance(10)
        data = (await record(http, "flux", task_id))["data"]
    assert data["successFlag"] == 2


def test_fail_stage_must_be_known() -> None:
    """An unknown fail_stage is refused by name."""
    with pytest.raises(ValueError, match="fail_stage"):
        Emulator().configure("flux-kontext", fail_stage="upload")


async def test_flux_times_are_iso_strings_others_epoch_ms(emu: Emulator) -> None:
    """Flux record-info gives createTime/completeTime as ISO 8601 (its docs); 4o and MJ ms."""
    async with client(emu) as http:
        ids = {family: await create(http, family) for family in ("flux", "gpt4o", "mj")}
        emu.advance(10_000)
        data = {family: (await record(http, family, ids[family]))["data"] for family in ids}
    flux = data["flux"]
    for key in ("createTime", "completeTime"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", flux[key])
    created = datetime.fromisoformat(flux["createTime"])
    completed = datetime.fromisoformat(flux["completeTime"])
    assert 0 < (completed - created).total_seconds() <= 10_000
    for family in ("gpt4o", "mj"):
        assert isinstance(data[family]["createTime"], int)
        assert data[family]["completeTime"] > data[family]["createTime"]


# -- money ------------------------------------------------------------------------------------


async def test_market_status_reports_the_charged_credits(emu: Emulator) -> None:
    """A final Market recordInfo carries creditsConsumed (0 for a failure) and updateTime;
    credits_in_status=False removes them (the April 2026 recorded shape)."""
    async with client(emu) as http:
        ok = await create(http, "market")
        emu.configure("nano-banana", fail_rate=1.0)
        failed = await create(http, "market")
        emu.advance(1)
        pending = (await record(http, "market", ok))["data"]
        emu.advance(10_000)
        success = (await record(http, "market", ok))["data"]
        failure = (await record(http, "market", failed))["data"]
        emu.set(credits_in_status=False)
        plain = (await record(http, "market", ok))["data"]
    assert "creditsConsumed" not in pending
    assert success["creditsConsumed"] == 4 and success["updateTime"] == success["completeTime"]
    assert failure["creditsConsumed"] == 0
    assert "creditsConsumed" not in plain and "updateTime" not in plain
    assert emu.charges() == {"total": 4.0, "tasks": {ok: 4.0}}


async def test_price_multiplier_charges_other_than_the_catalogue() -> None:
    """price_multiplier=2: each family charges twice its price; the balance, stats, Market
    status, the task list and charges() all show what was charged."""
    emu = Emulator(time_scale=1e-6, credits=1000, price_multiplier=2)
    async with emu, client(emu) as http:
        ids = {family: await create(http, family) for family in FAMILIES}
        emu.advance(10_000)
        market = (await record(http, "market", ids["market"]))["data"]
        credit = (await http.get("/api/v1/chat/credit")).json()["data"]
    expected = {"market": 8.0, "gpt4o": 20.0, "flux": 16.0, "mj": 50.0}
    charges = emu.charges()
    assert charges["tasks"] == {ids[f]: credits for f, credits in expected.items()}
    assert charges["total"] == emu.stats()["credits_charged"] == 94.0
    assert credit == 1000 - 94.0
    assert market["creditsConsumed"] == 8.0
    assert {t["taskId"]: t["charged"] for t in emu.tasks()} == charges["tasks"]


async def test_price_multiplier_applies_to_the_402_check() -> None:
    """With KIE charging 3x, a balance that fits the catalogue price is refused (402)."""
    emu = Emulator(time_scale=1e-6, credits=10, price_multiplier=3)
    async with emu, client(emu) as http:
        answer = (await http.post("/api/v1/jobs/createTask", json=MARKET)).json()
    assert answer["code"] == 402


async def test_price_multiplier_from_scenario_and_admin(tmp_path: Path) -> None:
    """[defaults] price_multiplier and POST /_sim/configure set it; GET /_sim/charges reports."""
    path = tmp_path / "price.toml"
    path.write_text('[defaults]\nprice_multiplier = 1.5\n[models."nano-banana"]\nprice = 2\n')
    async with Emulator(scenario=path, time_scale=1e-6) as emu, client(emu) as http:
        first = await create(http, "market")
        async with httpx.AsyncClient(base_url=emu.base_url) as admin:
            await admin.post("/_sim/configure", json={"price_multiplier": 0.5})
            second = await create(http, "market")
            emu.advance(10_000)
            charges = (await admin.get("/_sim/charges")).json()
    assert charges == {"total": 4.0, "tasks": {first: 3.0, second: 1.0}}


# -- result-file faults -----------------------------------------------------------------------


async def finished(emu: Emulator, http: httpx.AsyncClient, family: str) -> str:
    """Run a task of ``family`` to success; its first result URL."""
    task_id = await create(http, family)
    emu.advance(10_000)
    return result_urls(family, (await record(http, family, task_id))["data"])[0]


@pytest.mark.parametrize("family", sorted(FAMILIES))
async def test_file_faults_spoil_results_of_every_family(emu: Emulator, family: str) -> None:
    """On paths=("files",): HTTP 500, a reset, a truncated PNG, an HTML page and text sent as
    PNG, one after another; then the file downloads intact. Each is counted per path."""
    kinds = ("http_500", "drop_connection", "truncated_body", "wrong_content_type",
             "mislabeled_body")  # fmt: skip
    async with client(emu) as http:
        url = await finished(emu, http, family)
        for kind in kinds:
            emu.inject(kind, count=1, paths="files")
        answers: list[httpx.Response | Exception] = []
        for _ in kinds:
            try:
                answers.append(await http.get(url))
            except httpx.TransportError as exc:
                answers.append(exc)
        intact = await http.get(url)
    server_error, reset, truncated, html, mislabeled = answers
    assert isinstance(server_error, httpx.Response) and server_error.status_code == 500
    assert isinstance(reset, httpx.TransportError)
    assert isinstance(truncated, httpx.Response) and truncated.status_code == 200
    assert truncated.headers["content-type"] == "image/png"
    assert intact.content.startswith(truncated.content) and len(truncated.content) < len(
        intact.content
    )
    with pytest.raises(ValueError):
        decode_png(truncated.content)
    assert isinstance(html, httpx.Response) and html.headers["content-type"].startswith("text/html")
    assert b"<html>" in html.content
    assert isinstance(mislabeled, httpx.Response)
    assert mislabeled.headers["content-type"] == "image/png"
    assert not mislabeled.content.startswith(b"\x89PNG")
    decode_png(intact.content)
    stats = emu.stats()
    assert stats["faults_by_path"] == {"files": dict.fromkeys(kinds, 1)}


async def test_slow_file_outlasts_a_read_timeout(emu: Emulator) -> None:
    """slow_response on files holds the result beyond the client's read timeout."""
    async with client(emu, timeout=httpx.Timeout(0.2)) as http:
        url = await finished(emu, http, "market")
        emu.inject("slow_response", count=1, paths=["files"], seconds=2.0)
        with pytest.raises(httpx.ReadTimeout):
            await http.get(url)
        fine = await http.get(url)
    assert fine.status_code == 200
    assert emu.stats()["faults_by_path"]["files"] == {"slow_response": 1}


async def test_file_faults_by_rate_from_a_scenario(tmp_path: Path) -> None:
    """A scenario's [[faults]] with paths=["files"] and a rate spoils about that share of
    downloads, reproducibly for a seed, and never touches the API endpoints."""
    path = tmp_path / "files.toml"
    path.write_text(
        "[defaults]\nseed = 3\ntime_scale = 0.000001\n"
        '[[faults]]\nkind = "truncated_body"\nrate = 0.5\npaths = ["files"]\n'
    )
    async with Emulator(scenario=path) as emu, client(emu) as http:
        url = await finished(emu, http, "market")
        sizes = [len((await http.get(url)).content) for _ in range(40)]
    spoiled = emu.stats()["faults_by_path"]["files"]["truncated_body"]
    assert spoiled == sum(1 for size in sizes if size < max(sizes))
    assert 10 <= spoiled <= 30
    assert set(emu.stats()["faults_by_path"]) == {"files"}


async def test_file_faults_from_the_admin_api(emu: Emulator) -> None:
    """POST /_sim/inject takes the new kinds for files; GET /_sim/stats counts them."""
    async with client(emu) as http, httpx.AsyncClient(base_url=emu.base_url) as admin:
        url = await finished(emu, http, "gpt4o")
        injected = await admin.post(
            "/_sim/inject", json={"kind": "wrong_content_type", "paths": ["files"], "count": 2}
        )
        pages = [(await http.get(url)).headers["content-type"] for _ in range(3)]
        stats = (await admin.get("/_sim/stats")).json()
    assert injected.json() == {"ok": True}
    assert pages[:2] == ["text/html; charset=utf-8"] * 2 and pages[2] == "image/png"
    assert stats["faults_by_path"] == {"files": {"wrong_content_type": 2}}
    assert stats["faults"] == {"wrong_content_type": 2}
