"""kierouter plugin for Alibaba Qwen image models on KIE.ai's Market API.

Registers five models (``qwen/text-to-image``, ``qwen/image-to-image``, ``qwen/image-edit``,
``qwen2/text-to-image``, ``qwen2/image-edit``) with one :class:`QwenProvider` that turns a
canonical request into each model's ``input``. Installed, it is found through the ``kierouter``
entry point ``qwen``; in-process::

    from kierouter import load_registry
    import kierouter_qwen

    registry = load_registry([kierouter_qwen], entry_points=False)
"""

from __future__ import annotations

from kierouter import hookimpl
from kierouter.hookspecs import RegisterModel

from ._cards import CARDS
from ._provider import ACCELERATIONS, MODEL_OPTIONS, STEP_RANGES, QwenProvider

__all__ = [
    "ACCELERATIONS",
    "CARDS",
    "MODEL_OPTIONS",
    "STEP_RANGES",
    "QwenProvider",
    "kierouter_register_models",
]


@hookimpl
def kierouter_register_models(register: RegisterModel) -> None:
    """Register every Qwen model card with the shared provider."""
    provider = QwenProvider()
    for card in CARDS:
        register(card, provider)
