"""Where kierouter keeps the user's own files: the job history and stored keys.

``$KIEROUTER_HOME`` puts both in one folder (tests, CI, several identities); otherwise the
platform's user data folder holds the history (``~/.local/share/kierouter`` on Linux) and its
user config folder the keys (``~/.config/kierouter``), as ``platformdirs`` defines them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HOME_ENV", "config_dir", "data_dir"]

#: Environment variable naming one folder for kierouter's history and keys.
HOME_ENV = "KIEROUTER_HOME"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """The folder of the job history (``logs.db``); not created here."""
    home = _home()
    if home is not None:
        return home
    import platformdirs

    return platformdirs.user_data_path("kierouter", appauthor=False)


def config_dir() -> Path:
    """The folder of stored keys (``keys.json``); not created here."""
    home = _home()
    if home is not None:
        return home
    import platformdirs

    return platformdirs.user_config_path("kierouter", appauthor=False)
