"""kierouter plugin for Google's Nano Banana image models on KIE.ai's Market API.

Registers ``google/nano-banana``, ``google/nano-banana-edit``, ``nano-banana-pro`` and
``nano-banana-2`` with one :class:`NanoBananaProvider`. Installed, it is found through the
``kierouter`` entry point ``nano-banana``; in-process::

    from kierouter import load_registry
    import kierouter_nano_banana

    registry = load_registry([kierouter_nano_banana], entry_points=False)
"""

from __future__ import annotations

from kierouter import hookimpl
from kierouter.hookspecs import RegisterModel

from ._cards import CARDS
from ._provider import MODEL_OPTIONS, NanoBananaProvider

__all__ = ["CARDS", "MODEL_OPTIONS", "NanoBananaProvider", "kierouter_register_models"]


@hookimpl
def kierouter_register_models(register: RegisterModel) -> None:
    """Register every Nano Banana model card with the shared provider."""
    provider = NanoBananaProvider()
    for card in CARDS:
        register(card, provider)
