"""kierouter plugin for Recraft's utility models on KIE.ai's Market API.

Registers ``recraft/remove-background`` and ``recraft/crisp-upscale`` with one
:class:`RecraftProvider`. Ask for them with ``ImageRequest(task="remove-background" |
"upscale", images=(url,))``. Installed, the plugin is found through the ``kierouter`` entry point
``recraft``; in-process::

    from kierouter import load_registry
    import kierouter_recraft

    registry = load_registry([kierouter_recraft], entry_points=False)
"""

from __future__ import annotations

from kierouter import hookimpl
from kierouter.hookspecs import RegisterModel

from ._cards import CARDS
from ._provider import RecraftProvider

__all__ = ["CARDS", "RecraftProvider", "kierouter_register_models"]


@hookimpl
def kierouter_register_models(register: RegisterModel) -> None:
    """Register both Recraft model cards with the shared provider."""
    provider = RecraftProvider()
    for card in CARDS:
        register(card, provider)
