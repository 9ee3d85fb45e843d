"""kierouter plugin for ByteDance Seedream on KIE.ai's Market API.

Registers six models (v4, 4.5 and 5 Lite, each as text-to-image and edit) with one
:class:`SeedreamProvider` that turns a canonical request into each model's ``input``.
Installed, it is found through the ``kierouter`` entry point ``seedream``; in-process::

    from kierouter import load_registry
    import kierouter_seedream

    registry = load_registry([kierouter_seedream], entry_points=False)
"""

from __future__ import annotations

from kierouter import hookimpl
from kierouter.hookspecs import RegisterModel

from ._cards import CARDS
from ._provider import MODEL_OPTIONS, SeedreamProvider

__all__ = ["CARDS", "MODEL_OPTIONS", "SeedreamProvider", "kierouter_register_models"]


@hookimpl
def kierouter_register_models(register: RegisterModel) -> None:
    """Register every Seedream model card with the shared provider."""
    provider = SeedreamProvider()
    for card in CARDS:
        register(card, provider)
