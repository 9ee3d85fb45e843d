"""kierouter.toml: loading, unknown keys named by path, policies with extends, prices applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kierouter import ConfigurationError, ImageRequest, Router, explain, hookimpl, load_registry
from kierouter._config import Config, load_config, parse_config
from kierouter.policy import BUILTIN_POLICIES, Policy, resolve_policy

SEEDREAM = "bytedance/seedream-v4-text-to-image"

EXAMPLE = """
[defaults]
policy = "cheap"
judge = "basic"

[policies.cheap]
extends = "budget"
description = "Budget, two steps, at most 5 credits an image."
max_steps = 2
[policies.cheap.constraints]
max_credits = 5

[policies.cheaper]
extends = "cheap"
[policies.cheaper.constraints]
deny = ["nano-banana"]

[policies.posters]
ordering = "objective"
ladder = ["gpt4o-image", "qwen"]
on_content_policy = "stop"
[policies.posters.constraints]
require = ["text"]
[policies.posters.objective]
by = "quality"
[policies.posters.budget]
max_attempts = 2
deadline = 120
[policies.posters.options.midjourney]
version = "7"

[prices."bytedance/seedream-v4-text-to-image"]
credits = 3.0
by_resolution = { "4K" = 5.0 }

[webhook]
public_url = "https://example.com"
hmac_key_env = "MY_HMAC"

[polling]
min_interval = 3.0

[batch]
concurrency = 4
create_rate = 10
create_window = 10.0
pipeline = ["upscale"]
"""


def write(tmp_path: Path, text: str, name: str = "kierouter.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_full_example_loads(tmp_path: Path) -> None:
    """Every section of the documented example loads into typed settings."""
    config = load_config(write(tmp_path, EXAMPLE))
    assert config.path and config.path.endswith("kierouter.toml")
    assert config.defaults.policy == "cheap" and config.defaults.judge == "basic"
    assert config.pricing[SEEDREAM].credits == 3.0
    assert config.pricing[SEEDREAM].by_resolution == {"4K": 5.0}
    assert config.batch.concurrency == 4 and config.batch.pipeline == ("upscale",)
    assert config.polling.to_poll_config().min_interval == 3.0
    assert config.webhook.enabled and config.webhook.hmac_key_env == "MY_HMAC"
    posters = config.policy("posters")
    assert posters.name == "posters" and posters.ordering == "objective"
    assert posters.constraints.require == ("text",) and posters.objective.by == "quality"
    assert posters.budget.max_attempts == 2 and posters.budget.deadline == 120
    assert posters.options == {"midjourney": {"version": "7"}}


def test_extends_merges_over_the_base(tmp_path: Path) -> None:
    """extends starts from the base policy; sub-tables merge key by key; chains work."""
    config = load_config(write(tmp_path, EXAMPLE))
    budget = BUILTIN_POLICIES["budget"]
    cheap = config.policy("cheap")
    assert cheap.objective == budget.objective and cheap.ordering == budget.ordering
    assert cheap.constraints.min_quality == budget.constraints.min_quality
    assert cheap.constraints.max_credits == 5 and cheap.max_steps == 2
    cheaper = config.policy("cheaper")
    assert cheaper.constraints.deny == ("nano-banana",)
    assert cheaper.constraints.max_credits == 5 and cheaper.max_steps == 2
    assert config.policy("cheap") is cheap  # cached: the planner's compiled form is reused


@pytest.mark.parametrize(
    ("toml", "path", "allowed"),
    [
        ("[policies.cheap]\nconstraint = {}", "policies.cheap.constraint", "constraints"),
        ("[policies.c.constraints]\nmax_credit = 1", "policies.c.constraints.max_credit", "max_"),
        ("[policies.cheap.objective]\nweight = 1", "policies.cheap.objective.weight", "quality"),
        ("[policies.cheap.budget]\nattempts = 1", "policies.cheap.budget.attempts", "max_attempts"),
        ('[prices."a/b"]\ncredit = 1', 'prices."a/b".credit', "credits"),
        ("[polices.x]\n", "polices", "policies"),
        ("[defaults]\npolcy = 'x'", "defaults.polcy", "policy"),
        ("[webhook]\nhmac_key = 'x'", "webhook.hmac_key", "hmac_key_env"),
        ("[polling]\nfirst_poll = 1", "polling.first_poll", "min_interval"),
        ("[batch]\nrate = 1", "batch.rate", "create_rate"),
    ],
)  # fmt: skip
def test_unknown_keys_are_named_with_the_allowed_ones(
    tmp_path: Path, toml: str, path: str, allowed: str
) -> None:
    """An unknown key anywhere raises ConfigurationError naming its full path and the keys
    allowed there, and the file."""
    with pytest.raises(ConfigurationError) as info:
        load_config(write(tmp_path, toml))
    message = str(info.value)
    assert f"unknown key {path};" in message
    assert allowed in message.split("allowed keys")[1]
    assert "kierouter.toml" in message


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"policies": {"x": {"max_steps": "two"}}}, "policies.x.max_steps"),
        ({"policies": {"x": {"ordering": "random"}}}, "policies.x.ordering"),
        ({"policies": {"x": {"constraints": {"task_kinds": ["paint"]}}}}, "policies.x.constraints"),
        ({"prices": {"a/b": {"credits": "x"}}}, 'prices."a/b".credits'),
        ({"prices": {"a/b": {}}}, 'prices."a/b"'),
        ({"batch": {"concurrency": 0}}, "batch.concurrency"),
        ({"policies": {"x": 3}}, "policies.x"),
        ({"policies": {"x": {"extends": 3}}}, "policies.x.extends"),
    ],
)
def test_wrong_values_name_their_path(data: dict[str, Any], where: str) -> None:
    """A value of the wrong type or out of range names where it is."""
    with pytest.raises(ConfigurationError, match=None) as info:
        parse_config(data)
    assert where in str(info.value)


def test_extends_loops_and_unknown_bases() -> None:
    """An extends loop is refused at load; an unknown base is refused when the policy is used,
    listing the known policies (a plugin's policy may only be known then)."""
    with pytest.raises(ConfigurationError, match="loops: a → b → a"):
        parse_config({"policies": {"a": {"extends": "b"}, "b": {"extends": "a"}}})
    config = parse_config({"policies": {"x": {"extends": "nope"}}})
    with pytest.raises(
        ConfigurationError, match=r"policies.x.extends: unknown policy 'nope'.*budget"
    ):
        resolve_policy("x", config=config)


def test_bad_toml_and_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Invalid TOML and a missing --config or $KIEROUTER_CONFIG file are configuration errors."""
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_config(write(tmp_path, "[policies\n"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setenv("KIEROUTER_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigurationError, match="KIEROUTER_CONFIG"):
        load_config()


def test_where_the_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No file: an empty Config; ./kierouter.toml is read; $KIEROUTER_CONFIG wins over it;
    an explicit path wins over both."""
    monkeypatch.delenv("KIEROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_config() == Config()
    write(tmp_path, "[defaults]\npolicy = 'speed'")
    assert load_config().defaults.policy == "speed"
    other = write(tmp_path, "[defaults]\npolicy = 'quality'", "other.toml")
    monkeypatch.setenv("KIEROUTER_CONFIG", str(other))
    assert load_config().defaults.policy == "quality"
    third = write(tmp_path, "[defaults]\npolicy = 'text'", "third.toml")
    assert load_config(third).defaults.policy == "text"


class ShoutPlugin:
    """An in-process plugin registering a policy named like one in the config."""

    @hookimpl
    def kierouter_register_policies(self, register: Any) -> None:
        register(Policy(name="posters", max_steps=1))
        register(Policy(name="plugin-base", ladder=("seedream",), max_steps=1))


def test_config_beats_plugins_beats_builtins() -> None:
    """A name resolves to the user's [policies] table first, then a plugin's, then a built-in;
    a table may extend a plugin's policy."""
    registry = load_registry([ShoutPlugin()], entry_points=False)
    config = parse_config(
        {
            "policies": {
                "posters": {"max_steps": 3},
                "mine": {"extends": "plugin-base", "max_steps": 2},
            }
        }
    )
    assert resolve_policy("posters", registry=registry, config=config).max_steps == 3
    assert resolve_policy("posters", registry=registry).max_steps == 1
    mine = resolve_policy("mine", registry=registry, config=config)
    assert mine.ladder == ("seedream",) and mine.max_steps == 2
    assert resolve_policy("budget", registry=registry, config=config) is BUILTIN_POLICIES["budget"]


async def test_router_applies_prices_and_toml_policies(tmp_path: Path) -> None:
    """A Router given the config prices its cards from [prices] and plans a [policies] table
    by name; explain() applies the same prices."""
    import kierouter_seedream

    config = load_config(write(tmp_path, EXAMPLE))
    async with Router(plugins=[kierouter_seedream], config=config, api_key="k") as router:
        assert router.registry.cards[SEEDREAM].pricing.credits == 3.0
        plan = router.explain("a red fox", policy="cheap")
        assert plan.policy == "cheap" and plan.steps[0].model == SEEDREAM
        assert plan.steps[0].credits == 3.0
        hi = router.explain(ImageRequest(prompt="a red fox", resolution="4K"), policy="cheap")
        assert hi.steps[0].credits == 5.0
    registry = load_registry([kierouter_seedream], entry_points=False)
    assert explain("a red fox", "cheap", registry=registry, config=config).steps[0].credits == 3.0


def test_webhook_and_polling_sections_build_router_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """[webhook] reads its secrets from the environment variables it names (never from the
    file) and [polling] becomes a PollConfig, as kierouter generate passes them to the Router."""
    monkeypatch.setenv("MY_HMAC", "s3cret-hmac")
    config = parse_config(
        {
            "webhook": {"public_url": "https://example.com", "hmac_key_env": "MY_HMAC"},
            "polling": {"min_interval": 4, "create_retries": 0},
        }
    )
    hook = config.webhook.to_webhook_config()
    assert hook.public_url == "https://example.com" and hook.hmac_key == "s3cret-hmac"
    assert "s3cret" not in repr(hook) and "s3cret" not in repr(config)
    poll = config.polling.to_poll_config()
    assert poll.min_interval == 4 and poll.create_retries == 0 and poll.factor == 1.6
    assert not parse_config({}).webhook.enabled


def test_a_spool_without_its_token_secret_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """[webhook] spool with its token secret's variable unset (or none named) is refused naming
    the variable to set, not with the router's WebhookConfig wording a file user never wrote."""
    monkeypatch.delenv("MY_TOKEN", raising=False)
    webhook = {"public_url": "https://example.com", "spool": str(tmp_path / "spool.sqlite")}
    named = parse_config({"webhook": {**webhook, "token_secret_env": "MY_TOKEN"}}).webhook
    with pytest.raises(ConfigurationError, match=r"\[webhook\] spool .*\$MY_TOKEN"):
        named.to_webhook_config()
    with pytest.raises(ConfigurationError, match=r"set \[webhook\] token_secret_env"):
        parse_config({"webhook": webhook}).webhook.to_webhook_config()
    monkeypatch.setenv("MY_TOKEN", "shared-secret-123")
    assert named.to_webhook_config().spool == webhook["spool"]


def test_polling_table_has_every_pollconfig_field_with_its_default() -> None:
    """``[polling]`` mirrors :class:`~kierouter.PollConfig` field for field and default for
    default, so a new poll setting cannot be left out of the configuration file."""
    import dataclasses

    import msgspec

    from kierouter import PollConfig
    from kierouter._config import PollingSettings

    assert msgspec.structs.asdict(PollingSettings()) == dataclasses.asdict(PollConfig())
