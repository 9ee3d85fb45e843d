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
    "Attempt": "._results",
    "Result": "._results",
    "ImageFile": "._results",
    "Adaptation": "._results",
    "Event": "._models",
    "ImageInput": "._inputs",
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
    "BlockedClientError": "._errors",
    "AmbiguousSubmissionError": "._errors",
    "TaskTimeoutError": "._errors",
    "BudgetExhaustedError": "._errors",
    "BudgetReachedError": "._errors",
    "JobFailedError": "._errors",
    "PaidUndeliveredError": "._errors",
    "DownloadError": "._errors",
    "UploadError": "._errors",
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
    # uploads of local input images
    "Uploader": "._uploads",
    "UploadedFile": "._upload_cache",
    "UploadCache": "._upload_cache",
    "MemoryUploadCache": "._upload_cache",
    "SqliteUploadCache": "._upload_cache",
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
    "explain": "._explain",
    "plan": ".policy",
    # configuration (kierouter.toml)
    "Config": "._config",
    "load_config": "._config",
    # router
    "Router": "._router",
    "SyncRouter": "._sync",
    "TaskHandle": "._task",
    "PollConfig": "._router",
    "WebhookConfig": "._router",
    "WebhookReceiver": ".webhooks",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    # "X as X" marks each name as re-exported for type checkers (mypy --strict in plugins)
    from ._config import Config as Config
    from ._config import load_config as load_config
    from ._errors import AmbiguousSubmissionError as AmbiguousSubmissionError
    from ._errors import AuthError as AuthError
    from ._errors import BlockedClientError as BlockedClientError
    from ._errors import BudgetExhaustedError as BudgetExhaustedError
    from ._errors import BudgetReachedError as BudgetReachedError
    from ._errors import ConfigurationError as ConfigurationError
    from ._errors import ContentPolicyError as ContentPolicyError
    from ._errors import DownloadError as DownloadError
    from ._errors import EndpointGoneError as EndpointGoneError
    from ._errors import FeatureDisabledError as FeatureDisabledError
    from ._errors import GenerationFailedError as GenerationFailedError
    from ._errors import InsufficientCreditsError as InsufficientCreditsError
    from ._errors import JobFailedError as JobFailedError
    from ._errors import KeyLimitError as KeyLimitError
    from ._errors import KieError as KieError
    from ._errors import KieRouterError as KieRouterError
    from ._errors import KieValidationError as KieValidationError
    from ._errors import MaintenanceError as MaintenanceError
    from ._errors import MalformedResponseError as MalformedResponseError
    from ._errors import NotFoundError as NotFoundError
    from ._errors import PaidUndeliveredError as PaidUndeliveredError
    from ._errors import PluginError as PluginError
    from ._errors import RateLimitedError as RateLimitedError
    from ._errors import ServerError as ServerError
    from ._errors import TaskTimeoutError as TaskTimeoutError
    from ._errors import TransportError as TransportError
    from ._errors import UploadError as UploadError
    from ._errors import ValidationError as ValidationError
    from ._explain import explain as explain
    from ._inputs import ImageInput as ImageInput
    from ._models import Capabilities as Capabilities
    from ._models import Event as Event
    from ._models import ImageRequest as ImageRequest
    from ._models import ModelCard as ModelCard
    from ._models import Pricing as Pricing
    from ._models import TaskStatus as TaskStatus
    from ._plugins import PluginRecord as PluginRecord
    from ._plugins import Registry as Registry
    from ._plugins import load_registry as load_registry
    from ._results import Adaptation as Adaptation
    from ._results import Attempt as Attempt
    from ._results import ImageFile as ImageFile
    from ._results import Result as Result
    from ._router import PollConfig as PollConfig
    from ._router import Router as Router
    from ._router import WebhookConfig as WebhookConfig
    from ._sync import SyncRouter as SyncRouter
    from ._task import TaskHandle as TaskHandle
    from ._transport import KieClient as KieClient
    from ._upload_cache import MemoryUploadCache as MemoryUploadCache
    from ._upload_cache import SqliteUploadCache as SqliteUploadCache
    from ._upload_cache import UploadCache as UploadCache
    from ._upload_cache import UploadedFile as UploadedFile
    from ._uploads import Uploader as Uploader
    from .hookspecs import hookimpl as hookimpl
    from .judging import BasicJudge as BasicJudge
    from .judging import JudgeContext as JudgeContext
    from .judging import Verdict as Verdict
    from .policy import Budget as Budget
    from .policy import Constraints as Constraints
    from .policy import Objective as Objective
    from .policy import Plan as Plan
    from .policy import Policy as Policy
    from .policy import plan as plan
    from .provider import MarketProvider as MarketProvider
    from .provider import PreparedCall as PreparedCall
    from .provider import Provider as Provider
    from .webhooks import WebhookReceiver as WebhookReceiver


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kierouter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
