"""kierouter plugin for KIE.ai's legacy GPT-4o image API.

Registers one model, ``gpt4o-image`` (text-to-image and editing, best at rendering text in
images), with a :class:`Gpt4oImageProvider` that speaks ``/api/v1/gpt4o-image/*``. Installed, it
is found through the ``kierouter`` entry point ``gpt4o-image``; in-process::

    from kierouter import load_registry
    import kierouter_gpt4o_image

    registry = load_registry([kierouter_gpt4o_image], entry_points=False)
"""

from __future__ import annotations

from kierouter import hookimpl
from kierouter.hookspecs import RegisterModel

from ._cards import CARDS, GPT4O_IMAGE
from ._provider import MODEL_OPTIONS, Gpt4oImageProvider

__all__ = [
    "CARDS",
    "GPT4O_IMAGE",
    "MODEL_OPTIONS",
    "Gpt4oImageProvider",
    "kierouter_register_models",
]


@hookimpl
def kierouter_register_models(register: RegisterModel) -> None:
    """Register the GPT-4o image card with its provider."""
    provider = Gpt4oImageProvider()
    for card in CARDS:
        register(card, provider)
