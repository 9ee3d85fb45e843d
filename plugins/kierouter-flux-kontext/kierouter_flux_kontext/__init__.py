"""kierouter plugin for Black Forest Labs Flux Kontext on KIE.ai's legacy Flux Kontext API.

Registers ``flux-kontext-pro`` and ``flux-kontext-max`` (each generates and edits) with one
:class:`FluxKontextProvider` that builds the flat ``/api/v1/flux/kontext/generate`` body and
parses ``successFlag`` statuses and callbacks. Installed, it is found through the ``kierouter``
entry point ``flux-kontext``; in-process::

    from kierouter import load_registry
    import kierouter_flux_kontext

    registry = load_registry([kierouter_flux_kontext], entry_points=False)
"""

from __future__ import annotations

from kierouter import hookimpl
from kierouter.hookspecs import RegisterModel

from ._cards import CARDS, FLUX_ASPECT_RATIOS
from ._provider import MODEL_OPTIONS, SAFETY_TOLERANCE, FluxKontextProvider

__all__ = [
    "CARDS",
    "FLUX_ASPECT_RATIOS",
    "MODEL_OPTIONS",
    "SAFETY_TOLERANCE",
    "FluxKontextProvider",
    "kierouter_register_models",
]


@hookimpl
def kierouter_register_models(register: RegisterModel) -> None:
    """Register both Flux Kontext model cards with the shared provider."""
    provider = FluxKontextProvider()
    for card in CARDS:
        register(card, provider)
