"""``--account NAME=KEY_ENV``: the pool's accounts are read from the environment, with errors
that name the flag and the variable and never show a key (no PostgreSQL needed)."""

from __future__ import annotations

import pytest

from kierouter._errors import ConfigurationError
from kierouter.cli._common import CliError
from kierouter.cli.worker import accounts_of
from kierouter.scale._pool import parse_account

SECRET = "kie-secret-9f3a7c"


def test_an_account_is_read_from_its_environment_variable_and_never_shown() -> None:
    account = parse_account("main=POOL_MAIN@http://127.0.0.1:8799", {"POOL_MAIN": SECRET})
    assert (account.name, account.api_key, account.base_url) == (
        "main",
        SECRET,
        "http://127.0.0.1:8799",
    )
    assert SECRET not in repr(account)
    assert parse_account("spare=POOL_SPARE", {"POOL_SPARE": SECRET}).base_url is None


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("main", "NAME=KEY_ENV"),
        ("main=", "NAME=KEY_ENV"),
        ("=POOL_MAIN", "NAME=KEY_ENV"),
        ("main=POOL_UNSET", "POOL_UNSET is not set"),
        ("main=POOL_MAIN@ftp://x", "is not http(s)"),
    ],
)
def test_a_bad_account_is_refused_naming_what_is_wrong(text: str, names: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_account(text, {"POOL_MAIN": SECRET})
    assert names in str(caught.value) and SECRET not in str(caught.value)


def test_the_command_line_takes_one_name_or_a_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POOL_A", SECRET)
    monkeypatch.setenv("POOL_B", SECRET + "b")
    assert accounts_of([]) == ("default", ())
    assert accounts_of(["main"]) == ("main", ())
    first, pool = accounts_of(["a=POOL_A", "b=POOL_B"])
    assert first == "a" and [p.name for p in pool] == ["a", "b"]
    for bad in (["a", "b"], ["a=POOL_A", "b"], ["a=POOL_A", "a=POOL_B"], ["a=POOL_NONE"]):
        with pytest.raises(CliError) as caught:
            accounts_of(bad)
        assert "--account" in str(caught.value) and SECRET not in str(caught.value)
