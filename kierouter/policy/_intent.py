"""What a request is about, read from the request alone (no model call).

:func:`infer_intent` returns a tuple whose first element is the task kind (``generate``,
``edit``, ``remove-background``, ``upscale``) followed by any of these tags:

``text``
    the prompt quotes words to render in the image (``a poster that says "OPEN"``,
    ``“SALE”``, ``「新品」``);
``chinese``
    the prompt is written in Chinese (Han script without kana or hangul), or ``language="zh"``;
``4k``
    the request asks for ``resolution="4K"``;
``anime``
    the prompt asks for an anime, manga or niji style (the ``artistic`` policy then asks
    Midjourney for ``niji6``).

:func:`prompt_language` guesses the prompt's language from its script: ``zh``, ``ja``, ``ko``,
or ``None`` (Latin script or no prompt: no language constraint is added).
"""

from __future__ import annotations

import re

from kierouter._models import ImageRequest

__all__ = ["INTENT_TAGS", "infer_intent", "prompt_language"]

#: Tags :func:`infer_intent` may add after the task kind.
INTENT_TAGS: tuple[str, ...] = ("text", "chinese", "4k", "anime")

# Quoted text: straight or typographic double quotes, CJK corner brackets, and single quotes
# that open after a space or line start (so that "don't" and "the fox's tail" do not count).
_QUOTED = re.compile(
    r"\"[^\"\n]{1,80}\"|“[^”\n]{1,80}”|「[^」\n]{1,80}」|『[^』\n]{1,80}』|«[^»\n]{1,80}»"
    r"|(?:^|(?<=\s))'[^'\n]{1,80}'(?=$|[\s.,;:!?])"
)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_ANIME = re.compile(r"\b(?:anime|manga|niji|ghibli|chibi|kawaii)\b|アニメ|动漫|動漫|二次元", re.I)

_CACHE: dict[tuple[str, str | None, str, str | None], tuple[str, ...]] = {}
_CACHE_MAX = 1024


def prompt_language(prompt: str) -> str | None:
    """The prompt's language as an ISO code when its script shows it (zh, ja, ko), else None."""
    if prompt.isascii():
        return None
    if _KANA.search(prompt):
        return "ja"
    if _HANGUL.search(prompt):
        return "ko"
    if _HAN.search(prompt):
        return "zh"
    return None


def _infer(prompt: str, language: str | None, kind: str, resolution: str | None) -> tuple[str, ...]:
    tags = [kind]
    if kind in ("generate", "edit"):
        if _QUOTED.search(prompt):
            tags.append("text")
        lang = language or prompt_language(prompt)
        if lang is not None and lang.lower().startswith("zh"):
            tags.append("chinese")
        if resolution == "4K":
            tags.append("4k")
        if _ANIME.search(prompt):
            tags.append("anime")
    return tuple(tags)


def infer_intent(request: ImageRequest) -> tuple[str, ...]:
    """The request's task kind, then its intent tags (``text``, ``chinese``, ``4k``, ``anime``)."""
    key = (request.prompt, request.language, request.kind, request.resolution)
    found = _CACHE.get(key)
    if found is None:
        found = _infer(*key)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = found
    return found
