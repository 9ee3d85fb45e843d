"""How ``kierouter batch`` turns its options into :class:`~kierouter.batch.BatchSettings`.

``--model`` and ``--max-credits`` restrict every policy a row can name, through the
configuration's ``[policies]``; they are stored in ``DIR/.kierouter-options.json`` beside the
journal so that ``resume`` applies them too (options given to ``resume`` replace them).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import CliError, registry_from_env
from ._options import Target, check_models, restrict_config

if TYPE_CHECKING:
    from kierouter.batch import BatchSettings

__all__ = [
    "OPTIONS_FILE",
    "restricted",
    "run_options",
    "settings_for",
    "store_restriction",
    "where_for",
]


#: command-line option -> BatchSettings attribute, for the options run and resume share
_RUN_OPTIONS = {
    "budget": "budget",
    "concurrency": "concurrency",
    "create_rate": "create_limit",
    "create_window": "create_window",
    "listen": "listen",
    "public_url": "public_url",
    "scenario": "scenario",
}


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given on the command line, by settings attribute."""
    given = {attr: getattr(args, name, None) for name, attr in _RUN_OPTIONS.items()}
    if given["scenario"] is not None:  # stored for resume, which may run from elsewhere
        given["scenario"] = os.path.abspath(given["scenario"])
    if getattr(args, "policy", None):
        given["policy"] = args.policy
    return {attr: value for attr, value in given.items() if value is not None}


def where_for(where: Target) -> dict[str, Any]:
    """BatchSettings attributes for a target."""
    if where.kind == "kie":
        return {"sim": False, "loopback": False}
    return {
        "sim": where.kind == "sim",
        "loopback": where.kind == "url",
        "base_url": where.base_url,
        "time_scale": where.time_scale,
        "read_rate": min(1000.0, 10.0 * where.time_scale),
    }


def settings_for(
    args: argparse.Namespace, config: Any = None, where: Target | None = None
) -> BatchSettings:
    from kierouter.batch import BatchSettings

    s = BatchSettings()
    batch = getattr(config, "batch", None)
    if batch is not None and getattr(config, "path", None):  # a configuration file was found
        s.concurrency = batch.concurrency
        s.create_limit = batch.create_rate
        s.create_window = batch.create_window
        default_policy = getattr(getattr(config, "defaults", None), "policy", None)
        s.policy = batch.policy or (default_policy if default_policy != "auto" else None)
    for attr, value in run_options(args).items():
        setattr(s, attr, value)
    for attr, value in (where_for(where) if where is not None else {}).items():
        setattr(s, attr, value)
    if s.scenario is not None and not s.sim:
        raise CliError("--scenario needs --sim (it configures the built-in emulator)")
    return s


# -- --model and --max-credits: kept beside the journal so that resume applies them too -------

OPTIONS_FILE = ".kierouter-options.json"


def restricted(args: argparse.Namespace, config: Any, folder: Path | None = None) -> Any:
    """``config`` with ``--model``/``--max-credits`` (or those stored in ``folder``) applied
    to every policy, and what to store for a later resume."""
    stored: dict[str, Any] = {}
    if folder is not None and (folder / OPTIONS_FILE).exists():
        stored = json.loads((folder / OPTIONS_FILE).read_text("utf-8"))
    models = args.models or stored.get("models") or []
    cap = args.max_credits if args.max_credits is not None else stored.get("max_credits")
    if not models and cap is None:
        return config, {}
    registry = registry_from_env()
    allowed = check_models(models, registry)
    narrowed = restrict_config(config, registry, models=allowed, max_credits=cap)
    return narrowed, {"models": list(allowed), "max_credits": cap}


def store_restriction(folder: Path, restriction: dict[str, Any]) -> None:
    if restriction:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / OPTIONS_FILE).write_text(json.dumps(restriction) + "\n", "utf-8")
