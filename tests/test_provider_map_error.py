"""Provider.map_error: a family refines what KIE's codes mean for it, and the router acts on the
refined error (a create answered 404 becomes EndpointGoneError, recorded and escalated)."""

from __future__ import annotations

from typing import Any

import kierouter_nano_banana

import kierouter as kr
from kierouter import EndpointGoneError, ImageRequest, ModelCard, NotFoundError, Pricing
from kierouter._errors import KieError, KieRouterError, ServerError
from kierouter.policy import Constraints, Policy
from kierouter.provider import PreparedCall, Provider
from kierouter.sim import Emulator

NANO = "google/nano-banana"


class _Gone(Provider):
    """A legacy-style family whose create endpoint no longer exists (the emulator answers 404)."""

    api_family = "gone"
    status_path = "/api/v1/gone/record-info"

    def __init__(self, *, broken: bool = False) -> None:
        self.broken = broken

    def prepare(
        self,
        card: ModelCard,
        request: ImageRequest,
        *,
        seed: int | None = None,
        callback_url: str | None = None,
    ) -> PreparedCall:
        return PreparedCall(path="/api/v1/gone/generate", body={"prompt": request.prompt})

    def parse_status(self, data: Any, *, task_id: str) -> kr.TaskStatus:
        raise AssertionError("never reached: the create fails")

    def parse_callback(self, body: Any) -> kr.TaskStatus:
        raise AssertionError("never reached: the create fails")

    def map_error(self, exc: KieError) -> KieRouterError:
        if self.broken:
            raise RuntimeError("plugin bug")
        if isinstance(exc, NotFoundError):
            return EndpointGoneError("the gone API was removed", code=exc.code)
        return exc


class _GonePlugin:
    name = "gone-test-plugin"

    def __init__(self, provider: _Gone) -> None:
        self.provider = provider

    @kr.hookimpl
    def kierouter_register_models(self, register: Any) -> None:
        card = ModelCard(
            id="test/gone",
            family="gone",
            task_kinds=("generate",),
            pricing=Pricing(credits=1),
            latency_p50=5,
            latency_p90=10,
            quality=5,
            languages=("*",),
        )
        register(card, self.provider)


def test_default_map_error_returns_the_error_unchanged() -> None:
    """A provider that does not override map_error hands back the very same error object."""
    provider = kierouter_nano_banana.NanoBananaProvider()
    error = ServerError("boom", code=500)
    assert provider.map_error(error) is error


async def _serve(provider: _Gone) -> kr.Result:
    policy = Policy(
        name="gone-first",
        ladder=("gone", "nano-banana"),
        constraints=Constraints(allow=("test/gone", NANO)),
    )
    async with (
        Emulator(time_scale=1000) as emu,
        kr.Router(
            [_GonePlugin(provider), kierouter_nano_banana],
            api_key=emu.api_key,
            base_url=emu.base_url,
            policy=policy,
            latency_scale=1 / 1000,
        ) as router,
    ):
        return await router.generate(ImageRequest(prompt="a red fox"))


async def test_router_records_the_mapped_error_and_escalates() -> None:
    """The emulator answers the unknown create path with HTTP 404; the provider's map_error turns
    that into EndpointGoneError, whose message is the attempt's reason; the next rung serves."""
    result = await _serve(_Gone())
    gone, served = result.attempts[0], result.attempts[-1]
    assert (gone.model, gone.outcome) == ("test/gone", "error")
    assert "the gone API was removed" in gone.reason
    assert (served.model, served.outcome, result.served_model) == (NANO, "success", NANO)


async def test_a_map_error_that_raises_leaves_the_original_error() -> None:
    """A buggy map_error never hides KIE's error: the attempt says what KIE answered (404)."""
    result = await _serve(_Gone(broken=True))
    gone = result.attempts[0]
    assert gone.outcome == "error" and "404" in gone.reason
    assert "removed" not in gone.reason
    assert result.served_model == NANO
