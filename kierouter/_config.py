"""kierouter's TOML configuration: policies, price overrides, defaults, webhook, polling, batch.

:func:`load_config` reads, in order of precedence, the ``path`` it is given (``--config``),
``$KIEROUTER_CONFIG``, or ``kierouter.toml`` in the current directory; with none of them it
returns an empty :class:`Config`. Every key is checked: an unknown one raises
:class:`~kierouter.ConfigurationError` naming its full path (``policies.cheap.constraint``) and
the keys allowed there; a wrong value names its path and the expected type.

.. code-block:: toml

    [defaults]
    policy = "cheap"

    [policies.cheap]
    extends = "budget"          # a built-in, a plugin's policy, or another [policies.*] table
    max_steps = 2
    [policies.cheap.constraints]
    max_credits = 5             # sub-tables merge key by key over the base policy's

    [prices."bytedance/seedream-v4-text-to-image"]
    credits = 3.0
    by_resolution = { "4K" = 5.0 }

A :class:`~kierouter.Router` given ``config=`` applies ``[prices]`` to its cards and resolves
policy names through ``[policies]`` first, then plugins, then the built-ins.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import msgspec.inspect as mi

from ._errors import ConfigurationError
from ._models import Pricing

if TYPE_CHECKING:
    from ._completion import PollConfig, WebhookConfig
    from .policy import Policy

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_FILE",
    "BatchSettings",
    "Config",
    "Defaults",
    "PollingSettings",
    "WebhookSettings",
    "load_config",
    "parse_config",
]

#: The file looked for in the current directory.
DEFAULT_CONFIG_FILE = "kierouter.toml"
#: Environment variable naming a configuration file.
CONFIG_ENV = "KIEROUTER_CONFIG"

_Positive = Annotated[float, msgspec.Meta(gt=0)]
_NonNegative = Annotated[float, msgspec.Meta(ge=0)]
_PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class Defaults(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[defaults]``: what commands use when the command line does not say.

    ``policy``: the policy name (``auto``); ``judge``: a judge name (none); ``out_dir``: where
    images are downloaded (``kierouter generate``: ``./kierouter-out``).
    """

    policy: str = "auto"
    judge: str | None = None
    out_dir: str | None = None


class WebhookSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[webhook]``: receive KIE's callbacks instead of polling.

    Secrets never live in the file: ``hmac_key_env`` and ``token_secret_env`` name environment
    variables that hold them.
    """

    public_url: str | None = None
    listen: str | None = None
    hmac_key_env: str = "KIE_WEBHOOK_HMAC_KEY"
    token_secret_env: str | None = None
    max_skew: _Positive = 300.0
    max_body: _PositiveInt = 256 * 1024
    read_timeout: _Positive = 10.0
    spool: str | None = None

    @property
    def enabled(self) -> bool:
        """True when a public URL or a listen address is set."""
        return self.public_url is not None or self.listen is not None

    def to_webhook_config(self) -> WebhookConfig:
        """The router's :class:`~kierouter.WebhookConfig`, secrets read from the environment."""
        from ._completion import WebhookConfig

        token_secret = os.environ.get(self.token_secret_env or "") or None
        if self.spool and token_secret is None:
            # the spool's processes check each other's tokens: a random secret would refuse all
            todo = (
                f"set ${self.token_secret_env} (named by [webhook] token_secret_env)"
                if self.token_secret_env
                else "set [webhook] token_secret_env to the variable that holds it"
            )
            raise ConfigurationError(
                f"[webhook] spool needs a token secret shared by every process: {todo}"
            )
        return WebhookConfig(
            public_url=self.public_url,
            listen=self.listen,
            hmac_key=os.environ.get(self.hmac_key_env) or None,
            token_secret=token_secret,
            max_skew=self.max_skew,
            max_body=self.max_body,
            read_timeout=self.read_timeout,
            spool=self.spool,
        )


class PollingSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[polling]``: the same fields as :class:`~kierouter.PollConfig`, same defaults."""

    first: _NonNegative | None = None
    factor: Annotated[float, msgspec.Meta(ge=1)] = 1.6
    min_interval: _Positive = 2.0
    max_interval: _Positive = 15.0
    jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    deadline_factor: _Positive = 3.0
    min_deadline: _Positive = 60.0
    webhook_fallback: _Positive = 2.0
    not_found_reads: Annotated[int, msgspec.Meta(ge=0)] = 3
    create_retries: Annotated[int, msgspec.Meta(ge=0)] = 2
    retry_backoff: _NonNegative = 2.0
    first_quantile: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.3
    interval_p50: _Positive = 0.3
    watch_limit: _Positive = 1200.0
    download_retries: Annotated[int, msgspec.Meta(ge=0)] = 3
    scheduler: Literal["shared", "per-task"] = "shared"
    read_chance: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.05
    min_read_gap: _Positive = 0.5

    def to_poll_config(self) -> PollConfig:
        """The router's :class:`~kierouter.PollConfig`."""
        from ._completion import PollConfig

        return PollConfig(**msgspec.structs.asdict(self))


class BatchSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[batch]``: how ``kierouter batch`` runs.

    ``concurrency``: rows in progress at once (the same default as ``--concurrency``: about 70
    keep KIE's create limit busy); ``create_rate`` new tasks per ``create_window``
    seconds (KIE allows 20 per 10 s per account); ``out_dir``: output folder; ``pipeline``:
    steps after generating, e.g. ``["upscale", "remove-background"]``; ``policy``: the batch's
    policy (else ``[defaults] policy``).
    """

    concurrency: _PositiveInt = 100
    create_rate: _PositiveInt = 20
    create_window: _Positive = 10.0
    out_dir: str | None = None
    pipeline: tuple[str, ...] = ()
    policy: str | None = None


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, dict=True):
    """A loaded configuration. ``pricing`` is what :class:`~kierouter.Router` applies.

    ``policies`` holds the checked ``[policies.NAME]`` tables; :meth:`policy` turns one into a
    :class:`~kierouter.Policy` (following ``extends``).
    """

    policies: dict[str, dict[str, Any]] = {}
    prices: dict[str, Pricing] = {}
    defaults: Defaults = Defaults()
    webhook: WebhookSettings = WebhookSettings()
    polling: PollingSettings = PollingSettings()
    batch: BatchSettings = BatchSettings()
    path: str | None = None

    @property
    def pricing(self) -> dict[str, Pricing]:
        """Price overrides by model id (the ``[prices]`` table)."""
        return self.prices

    def policy(self, name: str, *, registry: Any = None) -> Policy:
        """The policy ``[policies.NAME]`` describes, built on what it ``extends``.

        ``extends`` names another ``[policies.*]`` table, a policy a plugin registered
        (``registry``), or a built-in. Without ``extends`` the table starts from the defaults.
        """
        cache: dict[tuple[str, int], Policy] = self.__dict__.setdefault("_resolved", {})
        key = (name, id(registry))
        found = cache.get(key)
        if found is None:
            found = cache[key] = self._build(name, registry, ())
        return found

    def _build(self, name: str, registry: Any, chain: tuple[str, ...]) -> Policy:
        from .policy import Policy, builtin_policies

        if name in chain:
            loop = " → ".join((*chain, name))
            raise ConfigurationError(f"policies.{name}: 'extends' loops: {loop}")
        table = self.policies[name]
        base_name = table.get("extends")
        base: Policy
        if base_name is None:
            base = Policy(name=name)
        elif base_name in self.policies and base_name != name:
            base = self._build(base_name, registry, (*chain, name))
        else:
            registered = getattr(registry, "policies", None) or {}
            found = registered.get(base_name) or builtin_policies().get(base_name)
            if found is None:
                from .policy import known_policies

                known = [n for n in known_policies(registry=registry, config=self) if n != name]
                raise ConfigurationError(
                    f"policies.{name}.extends: unknown policy {base_name!r}; "
                    f"known policies: {', '.join(known)}"
                )
            base = found
        merged: dict[str, Any] = msgspec.to_builtins(base)
        for key, value in table.items():
            if key == "extends":
                continue
            if key in ("constraints", "objective", "budget"):
                merged[key] = {**merged.get(key, {}), **value}
            elif key in ("options", "options_by_intent") and isinstance(value, dict):
                merged[key] = _deep_merge(merged.get(key, {}), value)
            else:
                merged[key] = value
        merged["name"] = name
        try:
            return msgspec.convert(merged, Policy)
        except msgspec.ValidationError as exc:
            raise ConfigurationError(_at(f"policies.{name}", exc)) from None


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _join(path: str, key: str) -> str:
    part = key if _BARE.match(key) else f'"{key}"'
    return f"{path}.{part}" if path else part


def _at(path: str, exc: msgspec.ValidationError) -> str:
    text = str(exc)
    text = text.replace("`$.", f"`{path}.").replace("`$`", f"`{path}`").replace("`$[", f"`{path}[")
    return f"{path}: {text}" if path and path not in text else text


def _struct_fields(cls: type) -> dict[str, mi.Type]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return {f.encode_name: f.type for f in info.fields}


def _check(value: Any, typ: mi.Type, path: str) -> None:
    """Raise ConfigurationError for any key of ``value`` that ``typ`` does not allow."""
    if isinstance(typ, mi.UnionType):
        for member in typ.types:
            if isinstance(member, mi.StructType | mi.DictType) and isinstance(value, dict):
                _check(value, member, path)
                return
        return
    if isinstance(typ, mi.StructType) and isinstance(value, dict):
        _check_table(value, {f.encode_name: f.type for f in typ.fields}, path)
    elif (
        isinstance(typ, mi.DictType)
        and isinstance(value, dict)
        and isinstance(typ.value_type, mi.StructType | mi.DictType)
    ):
        for key, item in value.items():
            _check(item, typ.value_type, _join(path, str(key)))


def _check_table(value: dict[str, Any], allowed: dict[str, mi.Type], path: str) -> None:
    for key, item in value.items():
        if key not in allowed:
            where = f"[{path}]" if path else "the top level"
            raise ConfigurationError(
                f"unknown key {_join(path, key)}; allowed keys in {where}: "
                f"{', '.join(sorted(allowed))}"
            )
        _check(item, allowed[key], _join(path, key))


def _policy_fields() -> dict[str, mi.Type]:
    from .policy import Policy

    fields = _struct_fields(Policy)
    del fields["name"]
    fields["extends"] = mi.StrType()
    return fields


def parse_config(data: dict[str, Any], *, path: str | None = None) -> Config:
    """A :class:`Config` from an already parsed TOML document (checks every key)."""
    top = _struct_fields(Config)
    del top["path"]
    del top["policies"]
    allowed = {**top, "policies": mi.DictType(mi.StrType(), mi.AnyType())}
    _check_table(data, allowed, "")
    policies = data.get("policies", {})
    if not isinstance(policies, dict):
        raise ConfigurationError("policies: expected a table of [policies.NAME] tables")
    fields = _policy_fields()
    for name, table in policies.items():
        where = _join("policies", name)
        if not isinstance(table, dict):
            raise ConfigurationError(f"{where}: expected a table, got {type(table).__name__}")
        _check_table(table, fields, where)
        extends = table.get("extends")
        if extends is not None and not isinstance(extends, str):
            raise ConfigurationError(f"{where}.extends: expected a policy name (a string)")
    prices = data.get("prices", {})
    if isinstance(prices, dict):
        for model_id, table in prices.items():
            where = _join("prices", str(model_id))
            try:
                msgspec.convert(table, Pricing)
            except msgspec.ValidationError as exc:
                raise ConfigurationError(_at(where, exc)) from None
    rest = {k: v for k, v in data.items() if k != "policies"}
    try:
        config = msgspec.convert(rest, Config)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(_at("", exc).replace("`.", "`")) from None
    config.policies = {name: dict(table) for name, table in policies.items()}
    config.path = path
    # build every policy whose bases are known now (plugins' policies are known only later)
    from .policy import builtin_policies

    known = set(builtin_policies()) | set(config.policies)
    for name in config.policies:
        if _bases_known(config, name, known):
            config.policy(name)
    config.__dict__.pop("_resolved", None)
    return config


def _bases_known(config: Config, name: str, known: set[str]) -> bool:
    seen: set[str] = set()
    while name not in seen:
        seen.add(name)
        base = config.policies[name].get("extends")
        if base is None:
            return True
        if base not in known:
            return False
        if base not in config.policies or base == name:
            return True
        name = base
    return True  # a loop: building it raises the loop error


def _find(path: str | os.PathLike[str] | None) -> Path | None:
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise ConfigurationError(f"configuration file {str(found)!r} does not exist")
        return found
    env = os.environ.get(CONFIG_ENV)
    if env:
        found = Path(env)
        if not found.is_file():
            raise ConfigurationError(f"${CONFIG_ENV} names {env!r}, which does not exist")
        return found
    local = Path.cwd() / DEFAULT_CONFIG_FILE
    return local if local.is_file() else None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the configuration: ``path``, else ``$KIEROUTER_CONFIG``, else ``./kierouter.toml``.

    Returns an empty :class:`Config` when there is no file. Raises
    :class:`~kierouter.ConfigurationError` for unreadable TOML, an unknown key (named with its
    full path and the allowed keys) or a wrong value.
    """
    found = _find(path)
    if found is None:
        return Config()
    import tomllib

    try:
        with found.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{found}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read {found}: {exc.strerror}") from None
    try:
        return parse_config(data, path=str(found))
    except ConfigurationError as exc:
        raise ConfigurationError(f"{found}: {exc}") from None
