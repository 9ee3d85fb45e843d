"""Stored secrets: the KIE key and the webhook secrets, in the user's config folder.

``keys.json`` (mode 0600, its folder 0700) maps a name to a secret. The environment always
wins: a stored key is used only when its variable is unset or empty, and the CLI makes it
available to the rest of the code by setting that variable in its own process
(:func:`export_stored_keys`). Values are registered with :func:`~kierouter._errors.redact`'s
list as they are read, so no message can repeat them.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from ._errors import ConfigurationError, register_secret
from ._userdirs import config_dir

__all__ = [
    "KEY_NAMES",
    "export_stored_keys",
    "keys_path",
    "load_keys",
    "mask",
    "remove_key",
    "store_key",
]

#: Stored key name -> the environment variable it stands in for.
KEY_NAMES: dict[str, str] = {
    "kie": "KIE_API_KEY",
    "webhook-hmac": "KIE_WEBHOOK_HMAC_KEY",
    "webhook-token": "KIEROUTER_WEBHOOK_TOKEN_SECRET",
}
KEYS_FILE = "keys.json"


def keys_path() -> Path:
    """The file holding stored keys (it may not exist yet)."""
    return config_dir() / KEYS_FILE


def _check_name(name: str) -> None:
    if name not in KEY_NAMES:
        raise ConfigurationError(f"unknown key name {name!r}; one of {', '.join(KEY_NAMES)}")


def load_keys() -> dict[str, str]:
    """The stored keys (empty when there is no file)."""
    path = keys_path()
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the stored keys in {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} is not a JSON object of stored keys")
    keys = {str(k): str(v) for k, v in data.items() if isinstance(v, str) and v}
    for value in keys.values():
        register_secret(value)
    return keys


def _write(keys: dict[str, str]) -> Path:
    path = keys_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{KEYS_FILE}.{secrets.token_hex(4)}")
    # created 0600 from the first byte: the secret is never readable by others, even briefly
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(keys, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)
    return path


def store_key(name: str, value: str) -> Path:
    """Store ``value`` under ``name`` (``kie``, ``webhook-hmac``, ``webhook-token``)."""
    _check_name(name)
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise ConfigurationError(f"the {name} key is empty or contains spaces; nothing stored")
    register_secret(value)
    return _write({**load_keys(), name: value})


def remove_key(name: str) -> bool:
    """Forget the key stored under ``name``; False when none was."""
    _check_name(name)
    keys = load_keys()
    if keys.pop(name, None) is None:
        return False
    _write(keys)
    return True


def mask(value: str) -> str:
    """A form of ``value`` that tells keys apart without giving them away: ``abcd…wxyz``."""
    if len(value) >= 16:
        return f"{value[:4]}…{value[-4:]}"
    if len(value) >= 8:
        return f"…{value[-3:]}"
    return "…"


def export_stored_keys() -> None:
    """Set each unset (or empty) variable of :data:`KEY_NAMES` from the stored keys."""
    if not keys_path().exists():
        return
    for name, value in load_keys().items():
        variable = KEY_NAMES.get(name)
        if variable and not os.environ.get(variable, "").strip():
            os.environ[variable] = value
