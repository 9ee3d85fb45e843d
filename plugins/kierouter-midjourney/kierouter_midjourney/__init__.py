"""kierouter plugin for KIE.ai's legacy Midjourney API.

Registers one model, ``midjourney`` (text-to-image and image prompts; ``version`` ``niji6`` for
anime), with a :class:`MidjourneyProvider` that speaks ``/api/v1/mj/*``. KIE removed its MJ pages
from the docs in 2026: when KIE answers that the endpoint is gone, the router gets a
:class:`kierouter.EndpointGoneError` saying so. Installed, the plugin is found through the
``kierouter`` entry point ``midjourney``; in-process::

    from kierouter import load_registry
    import kierouter_midjourney

    registry = load_registry([kierouter_midjourney], entry_points=False)
"""

from __future__ import annotations

from kierouter import hookimpl
from kierouter.hookspecs import RegisterModel

from ._cards import CARDS, MIDJOURNEY
from ._provider import MODEL_OPTIONS, MidjourneyProvider

__all__ = [
    "CARDS",
    "MIDJOURNEY",
    "MODEL_OPTIONS",
    "MidjourneyProvider",
    "kierouter_register_models",
]


@hookimpl
def kierouter_register_models(register: RegisterModel) -> None:
    """Register the Midjourney card with its provider."""
    provider = MidjourneyProvider()
    for card in CARDS:
        register(card, provider)
