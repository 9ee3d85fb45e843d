"""Options shared by the commands, so that a flag means the same thing everywhere.

* ``--policy``, ``--model ID`` (repeatable) and ``--max-credits`` shape the plan through the
  policy's own constraints (the allow list, the per-image cap) and preferences: the planner is
  not touched, so ``explain`` shows exactly what ``generate`` and ``batch`` will do.
* ``--sim`` always starts the in-process emulator; ``--sim-url URL`` talks to a running one
  (``kierouter sim``); neither: KIE itself, which needs a key, checked before anything runs.
* ``--config FILE`` and ``--json``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ._common import CliError
from ._parser import nearest, positive, positive_int

if TYPE_CHECKING:
    from kierouter._config import Config
    from kierouter.policy import Policy

__all__ = [
    "MISSING_KEY",
    "SIM_KEY",
    "Target",
    "add_config",
    "add_json",
    "add_no_log",
    "add_policy",
    "add_target",
    "check_models",
    "check_out_dir",
    "restrict",
    "restrict_config",
    "target",
]

#: The key a running emulator accepts unless ``$KIE_SIM_API_KEY`` says otherwise.
SIM_KEY = "sim-key"
#: Time scale of ``--sim`` (20 emulated seconds per real second) and of ``kierouter sim``.
SIM_TIME_SCALE = 20.0
SIM_URL_TIME_SCALE = 1.0

MISSING_KEY = (
    "no KIE API key: set KIE_API_KEY, store one with 'kierouter keys set', "
    "or add --sim to run against the built-in emulator"
)


def add_json(p: argparse.ArgumentParser, what: str = "the result") -> None:
    """``--json``: machine-readable output on stdout."""
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def add_count(p: argparse.ArgumentParser) -> None:
    """``-n/--count N``: how many images (generate, explain, cost)."""
    p.add_argument(
        "-n", "--count", type=positive_int, default=1, metavar="N",
        help="number of images (default 1)",
    )  # fmt: skip


def add_config(p: argparse.ArgumentParser) -> None:
    """``--config FILE``."""
    p.add_argument(
        "--config",
        metavar="FILE",
        help="kierouter TOML configuration (default $KIEROUTER_CONFIG, else ./kierouter.toml)",
    )


def add_policy(p: argparse.ArgumentParser, *, policy_help: str | None = None) -> None:
    """``--policy NAME``, ``--model ID`` (repeatable) and ``--max-credits N``."""
    p.add_argument(
        "--policy",
        metavar="NAME",
        help=policy_help
        or "routing policy: auto, budget, speed, quality, artistic, text, chinese, utility, or "
        "one of your own (default: [defaults] policy, else auto)",
    )
    p.add_argument(
        "--model",
        dest="models",
        action="append",
        default=[],
        metavar="ID",
        help="use only this model (a model id or a family; repeat to allow several, tried in "
        "the order given)",
    )
    p.add_argument(
        "--max-credits",
        type=positive,
        metavar="N",
        help="use only models costing at most N credits an image",
    )


def add_target(p: argparse.ArgumentParser, *, base_url: bool = False) -> None:
    """``--sim`` / ``--sim-url URL`` and ``--time-scale X`` (and ``--base-url`` if asked)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--sim",
        action="store_true",
        help="run against a built-in emulator started for this command (no key needed)",
    )
    where.add_argument(
        "--sim-url",
        metavar="URL",
        help="run against a running emulator (kierouter sim) at URL, key $KIE_SIM_API_KEY "
        f"or {SIM_KEY}",
    )
    if base_url:
        where.add_argument(
            "--base-url", metavar="URL", help="KIE's API base URL (default $KIE_BASE_URL)"
        )
    p.add_argument(
        "--time-scale",
        type=positive,
        metavar="X",
        help=f"emulated seconds per real second: --sim's (default {SIM_TIME_SCALE:g}); with "
        f"--sim-url give the emulator's own (default {SIM_URL_TIME_SCALE:g}, as kierouter sim)",
    )


@dataclass(frozen=True)
class Target:
    """Where a command sends its calls: KIE, an in-process emulator, or a running one."""

    kind: Literal["kie", "sim", "url"]
    base_url: str | None = None
    api_key: str | None = None
    time_scale: float = 1.0

    @property
    def local(self) -> bool:
        """True for an emulator: downloads from loopback allowed, callbacks on loopback."""
        return self.kind != "kie"


def target(args: argparse.Namespace) -> Target:
    """The :class:`Target` the options name; KIE's key is checked here, before anything runs.

    Raises :class:`CliError` (exit 3) when KIE is the target and no key is set.
    """
    scale = getattr(args, "time_scale", None)
    if getattr(args, "sim", False):
        return Target("sim", time_scale=scale or SIM_TIME_SCALE)
    url = getattr(args, "sim_url", None)
    if url:
        key = os.environ.get("KIE_SIM_API_KEY") or SIM_KEY
        return Target("url", url.rstrip("/"), key, scale or SIM_URL_TIME_SCALE)
    if scale is not None:
        raise CliError("--time-scale applies to an emulator: add --sim or --sim-url URL", 2)
    return Target("kie", getattr(args, "base_url", None), require_key())


def require_key() -> str:
    """KIE's key from ``$KIE_API_KEY`` (or ``kierouter keys set``); exit 3 when there is none."""
    key = os.environ.get("KIE_API_KEY", "").strip()
    if not key:
        raise CliError(MISSING_KEY, 3)
    return key


def check_out_dir(folder: str | os.PathLike[str]) -> None:
    """Refuse, before anything is sent, an output folder that cannot be made: images are saved
    there only after KIE has made (and billed) them."""
    path = Path(folder)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise CliError(f"--out {path}: {existing} is a file, not a folder", 2)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CliError(f"--out {path}: {existing} is not writable", 2)


# -- the plan's options ------------------------------------------------------------------------


def check_models(models: list[str], registry: Any) -> tuple[str, ...]:
    """``models`` checked against the registered ids and families (a usage error names the
    nearest one)."""
    cards = registry.cards
    known = {*cards, *(c.family for c in cards.values())}
    for model in models:
        if model not in known:
            guess = nearest(model, known)
            hint = f"; did you mean {guess!r}?" if guess else "; 'kierouter models' lists them"
            raise CliError(f"argument --model: unknown model {model!r}{hint}", 2)
    return tuple(dict.fromkeys(models))


def restrict(
    policy: Policy, *, models: tuple[str, ...] = (), max_credits: float | None = None
) -> Policy:
    """``policy`` allowed only ``models`` (tried first, in that order) and models costing at
    most ``max_credits`` an image; the stricter of its own cap and this one wins."""
    if not models and max_credits is None:
        return policy
    import msgspec

    from kierouter.policy import Constraints, merge_constraints

    constraints = merge_constraints(
        policy.constraints, Constraints(allow=models, max_credits=max_credits)
    )
    prefer = tuple(dict.fromkeys((*models, *policy.prefer)))
    return msgspec.structs.replace(policy, constraints=constraints, prefer=prefer)


def restrict_config(
    config: Config, registry: Any, *, models: tuple[str, ...], max_credits: float | None
) -> Config:
    """``config`` with every policy it can name restricted as :func:`restrict` does.

    For the batch, whose rows and journal name their policies: each name (built-in, a
    plugin's or a ``[policies]`` table) is redefined in the configuration, so whichever one a
    row uses runs restricted.
    """
    if not models and max_credits is None:
        return config
    import msgspec

    from kierouter.policy import known_policies, resolve_policy

    tables: dict[str, dict[str, Any]] = {}
    for name in known_policies(registry=registry, config=config):
        own = resolve_policy(name, registry=registry, config=config)
        narrowed = restrict(own, models=models, max_credits=max_credits)
        changes = {
            "constraints": msgspec.to_builtins(narrowed.constraints),
            "prefer": list(narrowed.prefer),
        }
        base = config.policies.get(name, {"extends": name})
        tables[name] = {**base, **changes}
    return msgspec.structs.replace(config, policies={**config.policies, **tables})


def add_no_log(p: argparse.ArgumentParser) -> None:
    """``--no-log``: leave this run out of ``kierouter logs``."""
    p.add_argument("--no-log", action="store_true", help="do not record this run in kierouter logs")
