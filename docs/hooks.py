"""MkDocs hooks (mkdocs.yml ``hooks:``) for the API reference split over ``docs/api/``.

* Pages link API names as ``api.md#kierouter.Router`` (the reference used to be one page). Each
  such link becomes a cross-reference (``[...][kierouter.Router]``) that mkdocs-autorefs points
  at whichever ``docs/api/`` page renders the name, so the guides need not know the layout and a
  name that is not rendered still fails the strict build. The old section anchors
  (``api.md#batch``) lead to their module.
* A type in a signature that kierouter does not export (``Cooldown``) is shown as its name
  alone: autorefs would put its private defining path (``kierouter._cooldown.Cooldown``) in a
  tooltip.
"""

from __future__ import annotations

import re
from typing import Any

# the one-page reference's section anchors -> the module each section documented
_OLD_SECTIONS = {
    "policy-engine": "kierouter.policy",
    "journal": "kierouter.journal",
    "batch": "kierouter.batch",
    "webhooks": "kierouter.webhooks",
    "judging": "kierouter.judging",
    "hooks": "kierouter.hookspecs",
    "provider-helpers": "kierouter.provider",
    "testing-helpers": "kierouter.testing",
    "emulator": "kierouter.sim",
}
_API_LINK = re.compile(r"\]\((?:\.\./)*api\.md#(?P<anchor>[\w.-]+)\)")
_PRIVATE_TOOLTIP = re.compile(r'<span title="kierouter(?:\.\w+)*\._[\w.]*">')


def _to_crossref(match: re.Match[str]) -> str:
    anchor = match["anchor"]
    identifier = anchor if anchor.startswith("kierouter") else _OLD_SECTIONS.get(anchor)
    return f"][{identifier}]" if identifier else match[0]


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Turn links to names on the old one-page reference into cross-references."""
    return _API_LINK.sub(_to_crossref, markdown)


def on_post_page(output: str, **kwargs: Any) -> str:
    """Drop the private-path tooltip of types kierouter does not export."""
    return _PRIVATE_TOOLTIP.sub("<span>", output)
