"""The open catalogue: a scenario's [market_models] teaches the emulator Market models it does
not ship; it validates their declared rules with KIE's 422, serves PNGs, charges, calls back
and fails on demand as for built-in models. Through Emulator, the pytest fixture (marker or
indirect parameter), `kierouter sim --scenario`, and a Router with a third-party plugin."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

import kierouter as kr
from kierouter import hookimpl
from kierouter._images import decode_png
from kierouter._transport import KieClient
from kierouter.provider import MarketProvider
from kierouter.sim import Emulator, Scenario, load_scenario
from kierouter.testing import CallbackRecorder, run_task

ACME = """
[market_models."acme/imagine-1"]
family = "acme"
price = 0.5               # credits charged on success
latency = [5, 10]         # p50, p90, emulated seconds
images = 1                # results per task (or taken from a count field)
required = ["prompt"]
[market_models."acme/imagine-1".enums]
aspect_ratio = ["1:1", "16:9"]
[market_models."acme/imagine-1".ranges]
n = [1, 4]
[market_models."acme/imagine-1".max_length]
prompt = 2000
"""
MODEL = "acme/imagine-1"
SCENARIO: dict[str, Any] = {
    "market_models": {
        MODEL: {
            "family": "acme",
            "price": 0.5,
            "latency": [5, 10],
            "images": 1,
            "required": ["prompt"],
            "enums": {"aspect_ratio": ["1:1", "16:9"]},
            "ranges": {"n": [1, 4]},
            "max_length": {"prompt": 2000},
        }
    }
}


def acme_scenario(**extra: Any) -> Scenario:
    """The issue's example model, with extra keys for it."""
    table = {**SCENARIO["market_models"][MODEL], **extra}
    return Scenario.from_dict({"market_models": {MODEL: table}})


def client(emu: Emulator) -> httpx.AsyncClient:
    """A client with the emulator's key."""
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    return httpx.AsyncClient(base_url=emu.base_url, headers=headers)


async def run(emu: Emulator, http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """Create an acme task with ``fields``, finish it, return its final record data."""
    body = {"model": MODEL, "input": {"prompt": "a red fox", **fields}}
    answer = (await http.post("/api/v1/jobs/createTask", json=body)).json()
    assert answer["code"] == 200, answer
    emu.advance(10_000)
    data: dict[str, Any] = (
        await http.get("/api/v1/jobs/recordInfo", params={"taskId": answer["data"]["taskId"]})
    ).json()["data"]
    return data


def test_the_issue_toml_loads_as_the_dict() -> None:
    """The TOML example and the fixture's dict form declare the same model."""
    from_toml = Scenario.from_dict(tomllib.loads(ACME))
    assert from_toml.market_models == Scenario.from_dict(SCENARIO).market_models
    spec = from_toml.market_models[MODEL]
    assert (spec.family, spec.price, spec.p50, spec.p90) == ("acme", 0.5, 5.0, 10.0)


async def test_declared_model_runs_to_a_charged_png(tmp_path: Path) -> None:
    """From a TOML file: the task succeeds at the declared latency, its PNG has the asked ratio,
    it is charged the declared price, and the status carries that charge."""
    path = tmp_path / "acme.toml"
    path.write_text(ACME)
    async with Emulator(scenario=path, time_scale=1e-6, credits=10) as emu, client(emu) as http:
        data = await run(emu, http, aspect_ratio="16:9")
        (url,) = json.loads(data["resultJson"])["resultUrls"]
        image = decode_png((await http.get(url)).content)
    assert data["model"] == MODEL and data["state"] == "success"
    assert 1 <= data["costTime"] <= 100
    assert image.width > image.height
    assert data["creditsConsumed"] == 0.5
    assert emu.balance == 9.5 and emu.stats()["created"] == {MODEL: 1}
    assert emu.tasks()[0]["family"] == "acme"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prompt": None}, "input.prompt: This field is required"),
        ({"prompt": "   "}, "input.prompt: This field is required"),
        ({"aspect_ratio": "4:3"}, "input.aspect_ratio: '4:3' is not one of: 1:1, 16:9"),
        ({"n": 5}, "input.n: 5 is out of range 1..4"),
        ({"n": "two"}, "input.n: must be a number"),
        ({"prompt": "x" * 2001}, "input.prompt: is 2001 characters, the maximum is 2000"),
    ],
)
async def test_declared_rules_refuse_with_kies_422(fields: dict[str, Any], message: str) -> None:
    """Each declared rule refuses a bad input with code 422 over HTTP 200; nothing is created."""
    async with Emulator(scenario=acme_scenario()) as emu, client(emu) as http:
        inputs = {k: v for k, v in {"prompt": "a fox", **fields}.items() if v is not None}
        answer = await http.post("/api/v1/jobs/createTask", json={"model": MODEL, "input": inputs})
    assert answer.status_code == 200
    assert answer.json() == {"code": 422, "msg": message, "data": None}
    assert emu.stats()["created_total"] == 0


async def test_undeclared_models_are_still_unsupported() -> None:
    """A model neither built in nor declared is refused as KIE refuses an unknown model."""
    async with Emulator(scenario=acme_scenario()) as emu, client(emu) as http:
        body = {"model": "acme/imagine-2", "input": {"prompt": "x"}}
        answer = (await http.post("/api/v1/jobs/createTask", json=body)).json()
    assert answer["code"] == 422 and "not supported" in answer["msg"]


async def test_count_field_sets_the_images_and_the_price() -> None:
    """n (a usual count field) gives n images charged per image; images = "count" names the
    field instead; price_per = "task" charges once; price_by_resolution follows resolution."""
    async with Emulator(scenario=acme_scenario(), time_scale=1e-6) as emu, client(emu) as http:
        three = await run(emu, http, n=3)
    assert len(json.loads(three["resultJson"])["resultUrls"]) == 3
    assert three["creditsConsumed"] == 1.5
    named = acme_scenario(images="count", price_per="task", price_by_resolution={"2K": 2.0})
    async with Emulator(scenario=named, time_scale=1e-6) as emu, client(emu) as http:
        two = await run(emu, http, count=2, resolution="2K")
        default = await run(emu, http, n=4)  # not the count field here: one image
    assert len(json.loads(two["resultJson"])["resultUrls"]) == 2
    assert (two["creditsConsumed"], default["creditsConsumed"]) == (2.0, 0.5)
    assert len(json.loads(default["resultJson"])["resultUrls"]) == 1


async def test_declared_model_fails_and_is_faulted_on_demand(
    kie_callbacks: CallbackRecorder,
) -> None:
    """configure() by model id or declared family fails its tasks, callbacks report it, the price
    multiplier and faults apply as for built-in models."""
    scenario = acme_scenario()
    async with Emulator(scenario=scenario, time_scale=1e-6, price_multiplier=2) as emu:
        async with client(emu) as http:
            emu.configure("acme", fail_rate=1.0, fail_code="501", fail_msg="no")
            body = {"model": MODEL, "callBackUrl": kie_callbacks.url + "/cb",
                    "input": {"prompt": "a fox"}}  # fmt: skip
            failed = (await http.post("/api/v1/jobs/createTask", json=body)).json()["data"]
            emu.advance(10_000)
            emu.configure(MODEL, fail_rate=0.0)
            ok = await run(emu, http)
            emu.inject("code_455", count=1, paths="create")
            refused = await http.post("/api/v1/jobs/createTask", json=body)
        (call,) = await kie_callbacks.wait(1)
    assert call["body"]["code"] == 501 and call["body"]["data"]["taskId"] == failed["taskId"]
    assert call["body"]["data"]["failMsg"] == "no"
    assert ok["creditsConsumed"] == 1.0
    assert refused.json()["code"] == 455
    assert emu.charges()["total"] == 1.0


async def test_reset_keeps_declared_models() -> None:
    """reset() forgets tasks and settings, not the models the scenario declared."""
    async with Emulator(scenario=acme_scenario(), time_scale=1e-6) as emu, client(emu) as http:
        emu.reset()
        data = await run(emu, http)
    assert data["state"] == "success"


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"price": 1, "latency": [1, 2], "prize": 3}, "unknown key 'prize'"),
        ({"latency": [1, 2]}, "price is required"),
        ({"price": 1}, "latency is required"),
        ({"price": -1, "latency": [1, 2]}, "price must be >= 0"),
        ({"price": 1, "latency": [5, 2]}, "p90 2 is below p50 5"),
        ({"price": 1, "latency": [0, 2]}, "latency must be > 0"),
        ({"price": 1, "latency": [1, 2], "images": 0}, "images must be"),
        ({"price": 1, "latency": [1, 2], "ranges": {"n": [4, 1]}}, "low 4 is above high 1"),
        ({"price": 1, "latency": [1, 2], "enums": {"size": []}}, "size must be a non-empty list"),
        ({"price": 1, "latency": [1, 2], "required": "prompt"}, "required must be a list"),
        ({"price": 1, "latency": [1, 2], "price_per": "row"}, "price_per"),
        (
            {"price": 1, "latency": [1, 2], "ranges": {"p": [1, 2]}, "max_length": {"p": 3}},
            "both a range",
        ),
    ],
)
def test_bad_market_model_tables_are_refused_by_name(table: dict[str, Any], words: str) -> None:
    """Every mistake in a [market_models] table names the model and what is wrong."""
    with pytest.raises(kr.ConfigurationError, match=words) as caught:
        Scenario.from_dict({"market_models": {MODEL: table}})
    assert MODEL in str(caught.value)


def test_built_in_models_cannot_be_redeclared() -> None:
    """Declaring a built-in id points to [models."id"] instead."""
    with pytest.raises(kr.ConfigurationError, match=r'\[models\."wan/2-7-image"\]'):
        Scenario.from_dict({"market_models": {"wan/2-7-image": {"price": 1, "latency": [1, 2]}}})


def test_models_tables_must_name_known_models(tmp_path: Path) -> None:
    """[models."acme/x"] for nothing known is refused (it used to be ignored); once the model is
    declared, its id and its family may be configured."""
    with pytest.raises(kr.ConfigurationError, match=r"acme/imagine-1.*market_models"):
        Scenario.from_dict({"models": {MODEL: {"fail_rate": 1.0}}})
    path = tmp_path / "s.toml"
    path.write_text(ACME + '\n[models."acme"]\nfail_rate = 0.5\n[models."acme/imagine-1"]\n'
                    "price = 2\n")  # fmt: skip
    emu = Emulator(scenario=load_scenario(path))
    assert emu.state.config_for(MODEL).fail_rate == 0.5
    assert emu.state.config_for(MODEL).price == 2


async def test_configure_refuses_unknown_targets() -> None:
    """configure() and POST /_sim/configure refuse a model or family nobody declared."""
    async with Emulator() as emu, httpx.AsyncClient(base_url=emu.base_url) as admin:
        with pytest.raises(ValueError, match="acme/imagine-1"):
            emu.configure(MODEL, fail_rate=1.0)
        answer = await admin.post("/_sim/configure", json={"model": "acme", "fail_rate": 1})
    assert answer.status_code == 400 and "acme" in answer.json()["error"]


# -- the pytest fixture -----------------------------------------------------------------------


class Acme(MarketProvider):
    """A third-party Market provider for the declared model, as a plugin author writes it."""

    def build_input(
        self, card: kr.ModelCard, request: kr.ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[kr.Adaptation], bool]:
        fields = {"prompt": request.prompt, "aspect_ratio": request.aspect_ratio or "1:1"}
        return {**fields, "n": request.count}, [], False


CARD = kr.ModelCard(
    id=MODEL,
    family="acme",
    task_kinds=("generate",),
    pricing=kr.Pricing(credits=0.5),
    latency_p50=5,
    latency_p90=10,
    quality=7.0,
    capabilities=kr.Capabilities(aspect_ratios=("1:1", "16:9"), max_images=4),
)


class AcmePlugin:
    """Registers the acme model."""

    @hookimpl
    def kierouter_register_models(self, register: Any) -> None:
        """The one card."""
        register(CARD, Acme())


@pytest.mark.kie_scenario(SCENARIO)
async def test_fixture_takes_a_scenario_marker(
    kie_emulator: Emulator, kie_client: KieClient
) -> None:
    """@pytest.mark.kie_scenario(dict): the fixture's emulator serves the declared model."""
    request = kr.ImageRequest(prompt="a red fox", aspect_ratio="16:9", count=2)
    status = await run_task(kie_client, Acme(), CARD, request)
    assert status.state == "success" and len(status.urls) == 2
    assert kie_emulator.charges()["total"] == CARD.credits_for(request) == 1.0
    assert kie_emulator.time_scale == 1000


@pytest.mark.kie_scenario(market_models=SCENARIO["market_models"], defaults={"time_scale": 500})
async def test_fixture_marker_takes_keywords(kie_emulator: Emulator) -> None:
    """The marker's keywords are the scenario's tables; a scenario's time_scale wins."""
    assert MODEL in kie_emulator.state.market_models and kie_emulator.time_scale == 500


@pytest.mark.parametrize("kie_emulator", [SCENARIO], indirect=True)
async def test_fixture_takes_an_indirect_parameter(
    kie_emulator: Emulator, kie_client: KieClient
) -> None:
    """Indirect parametrization gives the fixture the same dict; a bad body is refused there."""
    prepared = Acme().prepare(CARD, kr.ImageRequest(prompt="x" * 2001), seed=None)
    with pytest.raises(kr.KieValidationError, match="maximum is 2000"):
        await kie_client.create(prepared.path, prepared.body)
    assert kie_emulator.stats()["created_total"] == 0


@pytest.mark.kie_scenario(SCENARIO)
async def test_router_serves_a_third_party_model(kie_emulator: Emulator, tmp_path: Path) -> None:
    """A Router with only the third-party plugin routes to the declared model and saves its PNG."""
    async with kr.Router(
        plugins=[AcmePlugin()],
        base_url=kie_emulator.base_url,
        api_key=kie_emulator.api_key,
        policy=kr.Policy(name="acme-only", ladder=("acme",)),
        out_dir=tmp_path,
        allow_private_downloads=True,
        latency_scale=1 / 1000,
    ) as router:
        result = await router.generate("a red fox in snow")
    assert result.served_model == MODEL
    assert [f.content_type for f in result.files] == ["image/png"]
    assert kie_emulator.charges()["total"] == 0.5


def test_sim_command_serves_a_declared_model(tmp_path: Path) -> None:
    """`kierouter sim --scenario FILE` serves the model the file declares."""
    path = tmp_path / "acme.toml"
    path.write_text(ACME)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kierouter.cli", "sim", "--port", "0", "--scenario", str(path),
         "--time-scale", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url, key = process.stdout.readline().strip(), process.stdout.readline().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
            body = {"model": MODEL, "input": {"prompt": "a fox", "aspect_ratio": "4:3"}}
            refused = http.post("/api/v1/jobs/createTask", json=body).json()
            body["input"]["aspect_ratio"] = "1:1"
            accepted = http.post("/api/v1/jobs/createTask", json=body).json()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert refused["code"] == 422 and "aspect_ratio" in refused["msg"]
    assert accepted["code"] == 200 and accepted["data"]["taskId"]
