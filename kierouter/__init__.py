"""kierouter: route image jobs across KIE.ai's models by cost, speed, quality and language.

Importing ``kierouter`` is cheap: names are resolved on first use (PEP 562), so the network stack
(httpx, stamina) loads only when a router first talks to KIE, and model cards, policies and
``explain`` never load it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> defining module (relative to this package)
_EXPORTS: dict[str, str] = {
    # data model
    "ImageRequest": "._models",
    "ModelCard": "._models",
    "Pricing": "._models",
    "Capabilities": "._models",
    "TaskStatus": "._models",
    "Attempt": "._models",
    "Result": "._models",
    "ImageFile": "._models",
    "Adaptation": "._models",
    "Event": "._models",
    # errors
    "KieRouterError": "._errors",
    "ConfigurationError": "._errors",
    "ValidationError": "._errors",
    "PluginError": "._errors",
    "KieError": "._errors",
    "AuthError": "._errors",
    "KeyLimitError": "._errors",
    "InsufficientCreditsError": "._errors",
    "NotFoundError": "._errors",
    "KieValidationError": "._errors",
    "ContentPolicyError": "._errors",
    "RateLimitedError": "._errors",
    "MaintenanceError": "._errors",
    "ServerError": "._errors",
    "GenerationFailedError": "._errors",
    "FeatureDisabledError": "._errors",
    "EndpointGoneError": "._errors",
    "TransportError": "._errors",
    "MalformedResponseError": "._errors",
    "AmbiguousSubmissionError": "._errors",
    "TaskTimeoutError": "._errors",
    "BudgetExhaustedError": "._errors",
    "JobFailedError": "._errors",
    "DownloadError": "._errors",
    # plugins
    "hookimpl": ".hookspecs",
    "Registry": "._plugins",
    "PluginRecord": "._plugins",
    "load_registry": "._plugins",
    "Provider": ".provider",
    "MarketProvider": ".provider",
    "PreparedCall": ".provider",
    # transport
    "KieClient": "._transport",
    # judging
    "Verdict": ".judging",
    "JudgeContext": ".judging",
    "BasicJudge": ".judging",
    # policy
    "Policy": ".policy",
    "Constraints": ".policy",
    "Objective": ".policy",
    "Budget": ".policy",
    "Plan": ".policy",
    "explain": ".policy",
    "plan": ".policy",
    # router
    "Router": "._router",
    "SyncRouter": "._router",
    "TaskHandle": "._router",
    "PollConfig": "._router",
    "WebhookConfig": "._router",
    "WebhookReceiver": ".webhooks",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from ._errors import (
        AmbiguousSubmissionError,
        AuthError,
        BudgetExhaustedError,
        ConfigurationError,
        ContentPolicyError,
        DownloadError,
        EndpointGoneError,
        FeatureDisabledError,
        GenerationFailedError,
        InsufficientCreditsError,
        JobFailedError,
        KeyLimitError,
        KieError,
        KieRouterError,
        KieValidationError,
        MaintenanceError,
        MalformedResponseError,
        NotFoundError,
        PluginError,
        RateLimitedError,
        ServerError,
        TaskTimeoutError,
        TransportError,
        ValidationError,
    )
    from ._models import (
        Adaptation,
        Attempt,
        Capabilities,
        Event,
        ImageFile,
        ImageRequest,
        ModelCard,
        Pricing,
        Result,
        TaskStatus,
    )
    from ._plugins import PluginRecord, Registry, load_registry
    from ._router import PollConfig, Router, SyncRouter, TaskHandle, WebhookConfig
    from ._transport import KieClient
    from .hookspecs import hookimpl
    from .judging import BasicJudge, JudgeContext, Verdict
    from .policy import Budget, Constraints, Objective, Plan, Policy, explain, plan
    from .provider import MarketProvider, PreparedCall, Provider
    from .webhooks import WebhookReceiver


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kierouter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
