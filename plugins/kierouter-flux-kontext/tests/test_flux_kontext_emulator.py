"""Flux Kontext against the KIE emulator over real HTTP: both models generate and edit, KIE
accepts every body (translation and safety options included), failures map to a failed status
with KIE's errorCode, callbacks parse like status reads, and the router serves and downloads."""

from __future__ import annotations

import asyncio

import kierouter_flux_kontext
import pytest
from kierouter_flux_kontext import CARDS, FluxKontextProvider

from kierouter import (
    ImageRequest,
    KieValidationError,
    Policy,
    PollConfig,
    Router,
    ServerError,
    WebhookConfig,
)
from kierouter._transport import KieClient
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

BY_ID = {card.id: card for card in CARDS}
MODELS = [card.id for card in CARDS]
IMG = "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp"


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.mark.parametrize("model", MODELS)
async def test_generate(kie_emulator: Emulator, kie_client: KieClient, model: str) -> None:
    """Each model generates one image at the requested portrait ratio, charged the card's price."""
    request = ImageRequest(
        prompt="a lighthouse on a cliff",
        aspect_ratio="9:16",
        options={model: {"safetyTolerance": 6, "promptUpsampling": True, "outputFormat": "png"}},
    )
    status = await run_task(kie_client, FluxKontextProvider(), BY_ID[model], request)
    assert (status.state, status.raw_state, len(status.urls)) == ("success", "SUCCESS", 1)
    assert status.urls[0].startswith(kie_emulator.base_url)
    width, height = _png_size((await kie_client.http.get(status.urls[0])).content)
    assert height > width
    stats = kie_emulator.stats()
    assert stats["created"] == {model: 1}
    assert stats["credits_charged"] == BY_ID[model].credits_for(request)


@pytest.mark.parametrize("model", MODELS)
async def test_edit(kie_emulator: Emulator, kie_client: KieClient, model: str) -> None:
    """Each model edits one inputImage at edit's highest safetyTolerance, with a Chinese prompt
    that KIE is asked to translate."""
    request = ImageRequest(
        prompt="给天空加上五彩的热气球",
        images=(IMG,),
        options={"flux-kontext": {"safetyTolerance": 2}},
    )
    prepared = FluxKontextProvider().prepare(BY_ID[model], request)
    assert prepared.body["enableTranslation"] is True
    status = await run_task(kie_client, FluxKontextProvider(), BY_ID[model], request)
    assert status.state == "success" and len(status.urls) == 1
    (task,) = kie_emulator.tasks()
    assert task["state"] == "success"


async def test_safety_tolerance_refusal_is_not_a_server_fault(kie_client: KieClient) -> None:
    """Sent past the plugin's validation, an edit with safetyTolerance 3 is refused by KIE with
    code 500 (why the plugin checks the range first); the provider maps that 500 to a validation
    refusal that is not retried, and leaves any other 500 a transient server error."""
    provider = FluxKontextProvider()
    with pytest.raises(ServerError) as caught:
        await kie_client.create(
            "/api/v1/flux/kontext/generate",
            {"prompt": "x", "model": "flux-kontext-pro", "inputImage": IMG, "safetyTolerance": 3},
        )
    assert caught.value.code == 500
    mapped = provider.map_error(caught.value)
    assert isinstance(mapped, KieValidationError) and not mapped.transient
    assert "safetyTolerance" in str(mapped) and mapped.code == 500
    other = ServerError("internal error", code=500)
    assert provider.map_error(other) is other


@pytest.mark.parametrize("model", MODELS)
async def test_failure_maps_to_failed_status(
    kie_emulator: Emulator, kie_client: KieClient, model: str
) -> None:
    """A task the model fails comes back failed (successFlag 3, generation failed) with KIE's
    errorCode and errorMessage and no URLs."""
    kie_emulator.configure(model, fail_rate=1.0, fail_code="501", fail_msg="generation failed")
    request = ImageRequest(prompt="a red fox", images=(IMG,))
    status = await run_task(kie_client, FluxKontextProvider(), BY_ID[model], request)
    assert (status.state, status.raw_state) == ("failed", "GENERATE_FAILED")
    assert (status.fail_code, status.fail_message, status.urls) == (
        "501",
        "generation failed",
        (),
    )


@pytest.mark.parametrize("fail", [False, True])
async def test_callbacks_parse_like_status(
    kie_emulator: Emulator, kie_client: KieClient, fail: bool
) -> None:
    """The callback KIE posts for a finished task (data.info.resultImageUrl, or code 400 with
    empty info fields) parses to the same outcome as the status read."""
    if fail:
        kie_emulator.configure(
            "flux-kontext-pro", fail_rate=1.0, fail_code="400", fail_msg="flagged"
        )
    provider = FluxKontextProvider()
    status = await run_task(
        kie_client,
        provider,
        BY_ID["flux-kontext-pro"],
        ImageRequest(prompt="a red fox"),
        callback_url="http://127.0.0.1:9/kie/callback",  # nothing listens: the body is logged
    )
    for _ in range(500):
        if kie_emulator.callbacks:
            break
        await asyncio.sleep(0.01)
    callback = provider.parse_callback(kie_emulator.callbacks[0]["body"])
    assert (callback.task_id, callback.state, callback.urls) == (
        status.task_id,
        status.state,
        status.urls,
    )
    assert callback.fail_code == status.fail_code == ("400" if fail else None)


async def test_router_serves_and_downloads(kie_emulator: Emulator, tmp_path: object) -> None:
    """Through the router: an edit goes to Flux Kontext, and when the first model fails the other
    serves the job; the image is downloaded and the translation is reported."""
    async with Router(
        [kierouter_flux_kontext],
        api_key=kie_emulator.api_key,
        base_url=kie_emulator.base_url,
        policy=Policy(name="flux-only", ladder=("flux-kontext",)),
        allow_private_downloads=True,
        latency_scale=1 / 1000,
        out_dir=str(tmp_path),
    ) as router:
        request = ImageRequest(prompt="把天空变成日落", images=(IMG,))
        preferred = (await router.generate(request)).served_model
        assert preferred in MODELS
        kie_emulator.configure(preferred, fail_rate=1.0)
        result = await router.generate(request)
    first, last = result.attempts[0], result.attempts[-1]
    assert (first.model, first.outcome) == (preferred, "failed")
    assert last.outcome == "success" and result.served_model == last.model != preferred
    assert len(result.files) == 1
    assert [a.field for a in last.adaptations] == ["language"]


async def test_webhook_mode_completes_by_signed_callbacks(tmp_path: object) -> None:
    """With the router listening for callbacks, Flux Kontext's signed data.info callbacks complete
    a generate and an edit, each confirmed by exactly one status read; a failure callback (code
    501) moves the job on to the other model."""
    hmac_key = "whsec-flux-test-0123456789"
    async with Emulator(time_scale=200.0, hmac_key=hmac_key) as emu:
        emu.configure("flux-kontext-pro", fail_rate=1.0, fail_code="501", fail_msg="failed")
        async with Router(
            [kierouter_flux_kontext],
            api_key=emu.api_key,
            base_url=emu.base_url,
            policy=Policy(name="pro-first", ladder=("flux-kontext",), prefer=("flux-kontext-pro",)),
            webhook=WebhookConfig(listen="127.0.0.1:0", hmac_key=hmac_key),
            poll=PollConfig(webhook_fallback=20, deadline_factor=40),
            allow_private_downloads=True,
            latency_scale=1 / 200,
            out_dir=str(tmp_path),
        ) as router:
            results = [
                await router.generate(ImageRequest(prompt="a red fox in snow")),
                await router.generate(ImageRequest(prompt="make it night", images=(IMG,))),
            ]
            await emu.wait_callbacks(4)
        stats = emu.stats()
    assert [r.served_model for r in results] == ["flux-kontext-max", "flux-kontext-max"]
    assert [[a.model for a in r.attempts] for r in results] == [
        ["flux-kontext-pro", "flux-kontext-max"]
    ] * 2
    assert stats["created_total"] == 4 and stats["callbacks_sent"] == 4
    assert stats["status_reads"] == 4  # one confirmation per callback, no polling
    assert router.webhook_app.stats["accepted"] == 4
    assert all(len(r.files) == 1 for r in results)
