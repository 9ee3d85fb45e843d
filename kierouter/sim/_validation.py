"""Input validation as KIE documents it, answered with KIE's codes (``KIE-API.md`` §5–12).

Each Market model has a field table; the legacy families have their own checks. A failed check
raises :class:`Rejection` with the body ``code`` KIE uses: 422 for validation, 500 for Flux's
``safetyTolerance`` range (as KIE documents it), 400 for a body that is not JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MARKET_FIELDS",
    "Rejection",
    "check_fields",
    "validate_flux",
    "validate_gpt4o",
    "validate_market",
    "validate_mj",
]


class Rejection(Exception):
    """A request KIE would refuse: ``code`` and ``msg`` go into the envelope (HTTP 200)."""

    def __init__(self, code: int, msg: str, *, http_status: int = 200) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.retry_after: int | None = None

    def with_retry(self, seconds: int) -> Rejection:
        """Attach a ``Retry-After`` (seconds) to the answer."""
        self.retry_after = seconds
        return self


@dataclass(frozen=True)
class F:
    """One field's rule. Strictly private."""

    kind: str  # str, int, num, bool, url, urls, url_or_urls, numstr, any
    required: bool = False
    choices: tuple[Any, ...] | None = None
    lo: float | None = None
    hi: float | None = None
    min_len: int | None = None
    max_len: int | None = None
    max_items: int | None = None
    multiple: int | None = None
    code: int = 422


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 8


def _fail(name: str, text: str, code: int = 422) -> Rejection:
    return Rejection(code, f"{name}: {text}")


def _check(name: str, rule: F, value: Any) -> None:
    kind = rule.kind
    if kind == "str" and not isinstance(value, str):
        raise _fail(name, "must be a string")
    if kind == "bool" and not isinstance(value, bool):
        raise _fail(name, "must be a boolean")
    if kind in ("int", "num"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(name, "must be a number")
        if kind == "int" and not (isinstance(value, int) or float(value).is_integer()):
            raise _fail(name, "must be an integer")
    if kind == "numstr" and not (isinstance(value, str) and value.isdigit()):
        raise _fail(name, "must be a string of digits")
    if kind == "url" and not _is_url(value):
        raise _fail(name, "must be an http(s) URL")
    if kind == "urls" or (kind == "url_or_urls" and isinstance(value, list)):
        if not isinstance(value, list) or not all(_is_url(v) for v in value):
            raise _fail(name, "must be an array of http(s) URLs")
        if rule.max_items is not None and len(value) > rule.max_items:
            raise _fail(name, f"at most {rule.max_items} images are allowed, got {len(value)}")
        if rule.required and not value:
            raise _fail(name, "This field is required")
    elif kind == "url_or_urls" and not _is_url(value):
        raise _fail(name, "must be an http(s) URL")
    if rule.choices is not None and value not in rule.choices:
        allowed = ", ".join(str(c) for c in rule.choices)
        raise _fail(name, f"{value!r} is not one of: {allowed}")
    if isinstance(value, str) and kind == "str":
        if rule.max_len is not None and len(value) > rule.max_len:
            raise _fail(name, f"is {len(value)} characters, the maximum is {rule.max_len}")
        if rule.min_len is not None and len(value) < rule.min_len:
            raise _fail(name, f"is {len(value)} characters, the minimum is {rule.min_len}")
    if kind in ("int", "num"):
        if (rule.lo is not None and value < rule.lo) or (rule.hi is not None and value > rule.hi):
            raise _fail(name, f"{value} is out of range {rule.lo:g}..{rule.hi:g}", rule.code)
        if rule.multiple and value % rule.multiple:
            raise _fail(name, f"{value} is not a multiple of {rule.multiple}", rule.code)


def check_fields(fields: Mapping[str, F], data: Mapping[str, Any], prefix: str = "") -> None:
    """Check ``data`` against ``fields``; unknown fields are ignored, as KIE does."""
    for name, rule in fields.items():
        value = data.get(name)
        if value is None:
            if rule.required:
                raise _fail(prefix + name, "This field is required")
            continue
        _check(prefix + name, rule, value)
        if rule.required and isinstance(value, str) and not value.strip():
            raise _fail(prefix + name, "This field is required")


# -- Market models ----------------------------------------------------------------------------

_V4_SIZES = (
    "square", "square_hd", "portrait_4_3", "portrait_3_2", "portrait_16_9",
    "landscape_4_3", "landscape_3_2", "landscape_16_9", "landscape_21_9",
)  # fmt: skip
_QWEN_SIZES = (
    "square", "square_hd", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9",
)  # fmt: skip
_SD_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "2:3", "3:2", "21:9")
_NB_RATIOS = ("1:1", "9:16", "16:9", "3:4", "4:3", "3:2", "2:3", "5:4", "4:5", "21:9", "auto")
_NB2_RATIOS = (*_NB_RATIOS, "1:4", "4:1", "1:8", "8:1")
_GPT2_RATIOS = (
    "auto", "1:1", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "16:9", "9:16",
    "2:1", "1:2", "3:1", "1:3", "21:9", "9:21",
)  # fmt: skip
_GROK_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9")
_WAN_RATIOS = ("1:1", "16:9", "4:3", "21:9", "3:4", "9:16", "8:1", "1:8")
_RES = ("1K", "2K", "4K")
_ACCEL = ("none", "regular", "high")
_NSFW = {"nsfw_checker": F("bool")}


def _prompt(max_len: int, min_len: int | None = None) -> dict[str, F]:
    return {"prompt": F("str", required=True, max_len=max_len, min_len=min_len)}


_SEEDREAM_V4 = {
    **_prompt(5000),
    "image_size": F("str", choices=_V4_SIZES),
    "image_resolution": F("str", choices=_RES),
    "max_images": F("int", lo=1, hi=6),
    "seed": F("int"),
    **_NSFW,
}
_SEEDREAM_45 = {
    **_prompt(3000),
    "aspect_ratio": F("str", choices=_SD_RATIOS),
    "quality": F("str", required=True, choices=("basic", "high")),
    **_NSFW,
}
_SEEDREAM_5 = {**_SEEDREAM_45, **_prompt(3000, 3)}
_NANO = {
    **_prompt(5000),
    "output_format": F("str", choices=("png", "jpeg")),
    "aspect_ratio": F("str", choices=_NB_RATIOS),
    "image_size": F("str", choices=_NB_RATIOS),
}
_NANO_PRO = {
    **_prompt(10000),
    "image_input": F("urls", max_items=8),
    "aspect_ratio": F("str", choices=_NB_RATIOS),
    "resolution": F("str", choices=_RES),
    "output_format": F("str", choices=("png", "jpg")),
}
_NANO_2 = {
    **_NANO_PRO,
    **_prompt(20000),
    "image_input": F("urls", max_items=14),
    "aspect_ratio": F("str", choices=_NB2_RATIOS),
    "output_format": F("str", choices=("jpg", "png")),
}
_QWEN_COMMON = {
    "seed": F("int"),
    "guidance_scale": F("num", lo=0, hi=20),
    "enable_safety_checker": F("bool"),
    "output_format": F("str", choices=("png", "jpeg")),
    "negative_prompt": F("str", max_len=500),
    "acceleration": F("str", choices=_ACCEL),
    **_NSFW,
}
_QWEN_T2I = {
    **_prompt(5000),
    **_QWEN_COMMON,
    "image_size": F("str", choices=_QWEN_SIZES),
    "num_inference_steps": F("int", lo=2, hi=250),
}
_QWEN_I2I = {
    **_prompt(5000),
    **_QWEN_COMMON,
    "image_url": F("url", required=True),
    "strength": F("num", lo=0, hi=1),
    "num_inference_steps": F("int", lo=2, hi=250),
}
_QWEN_EDIT = {
    **_prompt(2000),
    **_QWEN_COMMON,
    "image_url": F("url", required=True),
    "image_size": F("str", choices=_QWEN_SIZES),
    "num_inference_steps": F("int", lo=2, hi=49),
    "sync_mode": F("bool"),
    "num_images": F("numstr", choices=("1", "2", "3", "4")),
}
_QWEN2_T2I = {
    **_prompt(800),
    "image_size": F("str", choices=("1:1", "3:4", "4:3", "9:16", "16:9")),
    "seed": F("int"),
    "output_format": F("str", choices=("png", "jpeg")),
    **_NSFW,
}
_QWEN2_EDIT = {
    **_QWEN2_T2I,
    # docs say a string; the recorded (accepted) request sent a one-element array
    "image_url": F("url_or_urls", required=True, max_items=1),
    "image_size": F("str", choices=("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9")),
}
_GPT2 = {**_prompt(20000), "aspect_ratio": F("str", choices=_GPT2_RATIOS),
         "resolution": F("str", choices=_RES), **_NSFW}  # fmt: skip
_WAN = {
    **_prompt(5000),
    "input_urls": F("urls", max_items=9),
    "aspect_ratio": F("str", choices=_WAN_RATIOS),
    "n": F("int", lo=1, hi=12),
    "resolution": F("str", choices=("1K", "2K")),
    "enable_sequential": F("bool"),
    "thinking_mode": F("bool"),
    "watermark": F("bool"),
    "seed": F("int"),
    **_NSFW,
}

#: Market model id -> its ``input`` field rules.
MARKET_FIELDS: dict[str, dict[str, F]] = {
    "bytedance/seedream-v4-text-to-image": _SEEDREAM_V4,
    "bytedance/seedream-v4-edit": {
        **_SEEDREAM_V4,
        "image_urls": F("urls", required=True, max_items=10),
    },
    "seedream/4.5-text-to-image": _SEEDREAM_45,
    "seedream/4.5-edit": {**_SEEDREAM_45, "image_urls": F("urls", required=True, max_items=14)},
    "seedream/5-lite-text-to-image": _SEEDREAM_5,
    "seedream/5-lite-image-to-image": {
        **_SEEDREAM_5,
        "image_urls": F("urls", required=True, max_items=14),
    },
    "google/nano-banana": _NANO,
    "google/nano-banana-edit": {**_NANO, "image_urls": F("urls", required=True, max_items=10)},
    "nano-banana-pro": _NANO_PRO,
    "nano-banana-2": _NANO_2,
    "qwen/text-to-image": _QWEN_T2I,
    "qwen/image-to-image": _QWEN_I2I,
    "qwen/image-edit": _QWEN_EDIT,
    "qwen2/text-to-image": _QWEN2_T2I,
    "qwen2/image-edit": _QWEN2_EDIT,
    "recraft/remove-background": {"image": F("url", required=True)},
    "recraft/crisp-upscale": {"image": F("url", required=True)},
    "gpt-image-2-text-to-image": _GPT2,
    "gpt-image-2-image-to-image": {**_GPT2, "input_urls": F("urls", required=True, max_items=16)},
    # docs list the id; client code shows quality (required) medium|high and three ratios
    "gpt-image/1.5-text-to-image": {
        **_prompt(3000),
        "aspect_ratio": F("str", choices=("1:1", "2:3", "3:2")),
        "quality": F("str", required=True, choices=("medium", "high")),
    },
    "grok-imagine/text-to-image": {**_prompt(5000), "aspect_ratio": F("str", choices=_GROK_RATIOS)},
    "grok-imagine/image-to-image": {
        **_prompt(5000),
        "image_urls": F("urls", required=True, max_items=1),
    },
    "wan/2-7-image": _WAN,
    "wan/2-7-image-pro": _WAN,
}


def validate_market(
    body: Any, declared: Mapping[str, Mapping[str, F]] | None = None
) -> tuple[str, dict[str, Any]]:
    """Check a createTask body against the built-in tables and the ``declared`` models' rules
    (a scenario's ``[market_models]``); return ``(model, input)``."""
    if not isinstance(body, dict):
        raise Rejection(400, "request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise Rejection(422, "model: This field is required")
    rules: Mapping[str, F] | None = MARKET_FIELDS.get(model)
    if rules is None and declared is not None:
        rules = declared.get(model)
    if rules is None:
        raise Rejection(422, f"model {model!r} is not supported (unknown model name)")
    callback = body.get("callBackUrl")
    if callback not in (None, "") and not _is_url(callback):
        raise Rejection(422, "callBackUrl: must be an http(s) URL")
    fields = body.get("input")
    if not isinstance(fields, dict):
        raise Rejection(422, "input: This field is required (a JSON object)")
    check_fields(rules, fields, "input.")
    _model_rules(model, fields)
    return model, fields


def _model_rules(model: str, fields: Mapping[str, Any]) -> None:
    if model.startswith("gpt-image-2"):
        ratio = fields.get("aspect_ratio")
        resolution = fields.get("resolution", "1K")
        if ratio in (None, "auto") and resolution != "1K":
            raise Rejection(422, "input.resolution: only 1K is supported with auto aspect ratio")
        if ratio == "1:1" and resolution == "4K":
            raise Rejection(422, "input.resolution: 4K is not supported at 1:1")
        if model.endswith("image-to-image") and ratio in ("5:4", "4:5") and resolution != "1K":
            raise Rejection(422, f"input.resolution: {ratio} supports 1K only")
    if model.startswith("wan/"):
        n = fields.get("n", 4)
        if not fields.get("enable_sequential") and n > 4:
            raise Rejection(422, "input.n: 1..4 unless enable_sequential is true (then 1..12)")


# -- legacy families --------------------------------------------------------------------------

_GPT4O = {
    "size": F("str", required=True, choices=("1:1", "3:2", "2:3")),
    "prompt": F("str"),
    "filesUrl": F("urls", max_items=5),
    "fileUrl": F("url"),
    "maskUrl": F("url"),
    "isEnhance": F("bool"),
    "uploadCn": F("bool"),
    "enableFallback": F("bool"),
    "fallbackModel": F("str", choices=("GPT_IMAGE_1", "FLUX_MAX")),
    "callBackUrl": F("url"),
}


def validate_gpt4o(body: Any) -> dict[str, Any]:
    """Check a ``/api/v1/gpt4o-image/generate`` body."""
    if not isinstance(body, dict):
        raise Rejection(400, "request body must be a JSON object")
    check_fields(_GPT4O, body)
    if not (body.get("prompt") or body.get("filesUrl") or body.get("fileUrl")):
        raise Rejection(422, "prompt or filesUrl: at least one is required")
    variants = body.get("nVariants")
    if variants is not None and str(variants) not in ("1", "2", "4"):
        raise Rejection(422, f"nVariants: {variants!r} is not one of: 1, 2, 4")
    return body


_FLUX = {
    "prompt": F("str", required=True),
    "model": F("str", choices=("flux-kontext-pro", "flux-kontext-max")),
    "aspectRatio": F("str", choices=("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")),
    "inputImage": F("url"),
    "outputFormat": F("str", choices=("jpeg", "png")),
    "promptUpsampling": F("bool"),
    "enableTranslation": F("bool"),
    "uploadCn": F("bool"),
    "watermark": F("str"),
    "callBackUrl": F("url"),
}


def validate_flux(body: Any) -> dict[str, Any]:
    """Check a ``/api/v1/flux/kontext/generate`` body (``safetyTolerance`` range → code 500)."""
    if not isinstance(body, dict):
        raise Rejection(400, "request body must be a JSON object")
    check_fields(_FLUX, body)
    high = 2 if body.get("inputImage") else 6
    check_fields({"safetyTolerance": F("int", lo=0, hi=high, code=500)}, body)
    return body


_MJ_TYPES = (
    "mj_txt2img", "mj_img2img", "mj_style_reference", "mj_omni_reference",
    "mj_video", "mj_video_hd",
)  # fmt: skip
_MJ = {
    "taskType": F("str", required=True, choices=_MJ_TYPES),
    "prompt": F("str", required=True, max_len=2000),
    "speed": F("str", choices=("relaxed", "fast", "turbo")),
    "fileUrls": F("urls"),
    "fileUrl": F("url"),
    "aspectRatio": F(
        "str",
        choices=("1:2", "9:16", "2:3", "3:4", "5:6", "6:5", "4:3", "3:2", "1:1", "16:9", "2:1"),
    ),
    "version": F("str", choices=("7", "6.1", "6", "5.2", "5.1", "niji6", "niji7")),
    "variety": F("int", lo=0, hi=100, multiple=5),
    "stylization": F("int", lo=0, hi=1000, multiple=50),
    "weirdness": F("int", lo=0, hi=3000, multiple=100),
    "ow": F("int", lo=1, hi=1000),
    "waterMark": F("str"),
    "enableTranslation": F("bool"),
    "videoBatchSize": F("int", choices=(1, 2, 4)),
    "motion": F("str", choices=("high", "low")),
    "callBackUrl": F("url"),
}


def validate_mj(body: Any) -> dict[str, Any]:
    """Check a ``/api/v1/mj/generate`` body."""
    if not isinstance(body, dict):
        raise Rejection(400, "request body must be a JSON object")
    check_fields(_MJ, body)
    task_type = body["taskType"]
    video = task_type in ("mj_video", "mj_video_hd")
    files = body.get("fileUrls") or ([body["fileUrl"]] if body.get("fileUrl") else [])
    if task_type not in ("mj_video", "mj_video_hd", "mj_omni_reference") and not body.get("speed"):
        raise Rejection(422, f"speed: This field is required for {task_type}")
    if task_type != "mj_txt2img" and not files:
        raise Rejection(422, f"fileUrls: This field is required for {task_type}")
    if video and len(files) != 1:
        raise Rejection(422, "fileUrls: video tasks take exactly one image")
    if video and not body.get("motion"):
        raise Rejection(422, "motion: This field is required for video tasks")
    if body.get("ow") is not None and task_type != "mj_omni_reference":
        raise Rejection(422, "ow: only mj_omni_reference takes ow")
    return body
