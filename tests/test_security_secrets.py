"""Secrets: after jobs that succeed, fail, end ambiguous, are refused for a bad key, and complete
by HMAC-signed callbacks (with forged ones refused), neither the API key nor the HMAC key appears
in any log line at DEBUG (captured and written to a file), exception text, repr, result, event,
journal file or batch manifest."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

import kierouter as kr
from kierouter._router import Router, WebhookConfig
from kierouter._transport import KieClient
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator

API_KEY = "sk-LEAKCANARY-api-5b8e2c7d1f9a4e3b"
HMAC_KEY = "whsec-LEAKCANARY-hmac-0d6f3a9c2e1b"
WRONG_KEY = "sk-LEAKCANARY-wrong-9a8b7c6d5e4f"
SECRETS = (API_KEY, HMAC_KEY, WRONG_KEY)
SEEDREAM = "bytedance/seedream-v4-text-to-image"
NANO = "google/nano-banana"
TWO = Policy(
    name="two", ladder=("seedream", "nano-banana"), constraints=Constraints(allow=(SEEDREAM, NANO))
)


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Every kierouter/httpx log record at DEBUG, written to a file as well."""
    path = tmp_path / "debug.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s %(args)s"))
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
        handler.close()


def _texts_of(value: Any) -> list[str]:
    out = [repr(value), str(value)]
    if isinstance(value, BaseException):
        out += [repr(a) for a in value.args]
        out += [repr(getattr(value, "attempts", ()))]
        if value.__cause__ is not None:
            out += _texts_of(value.__cause__)
    if isinstance(value, msgspec.Struct):
        out.append(msgspec.json.encode(value).decode())
    return out


def _leaks(texts: list[str]) -> list[str]:
    return [f"{s[:12]}… in {t[:160]!r}" for t in texts for s in SECRETS if s in t]


def _names(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*")]


def _files_text(folder: Path) -> list[str]:
    """Every file under ``folder`` as text (bytes decoded leniently; SQLite pages included)."""
    return [p.read_bytes().decode("latin-1") for p in sorted(folder.rglob("*")) if p.is_file()]


async def test_no_secret_in_logs_errors_reprs_results_or_journal(
    tmp_path: Path,
    log_file: Path,
    caplog: pytest.LogCaptureFixture,
    reliability: Any,
) -> None:
    """Success, failure, ambiguous create, bad key and signed callbacks (some forged): the
    API key and HMAC key appear nowhere a user or an operator can see."""
    from kierouter.journal import RouterJournal, SqliteJournal

    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    events: list[kr.Event] = []
    async with Emulator(
        api_key=API_KEY, hmac_key=HMAC_KEY, time_scale=500.0, create_limit=500, create_window=1.0
    ) as emu:
        backend = SqliteJournal(str(tmp_path / "journal.sqlite"))
        client = KieClient(
            API_KEY, base_url=emu.base_url, create_limit=500, create_window=1.0, read_rate=500
        )
        config = WebhookConfig(listen="127.0.0.1:0", hmac_key=HMAC_KEY, token_secret="tok-1")
        router = Router(
            _plugins(),
            client=client,
            latency_scale=1 / 500.0,
            allow_private_downloads=True,
            out_dir=tmp_path / "out",
            webhook=config,
            journal=RouterJournal(backend),
            event_sinks=[events.append],
        )
        plain = Router(
            _plugins(), client=client, latency_scale=1 / 500.0, allow_private_downloads=True
        )
        async with router:
            keys = [f"ok-{i}" for i in range(3)]
            backend.add_jobs([(k, {"prompt": "a fox"}) for k in [*keys, "fail-1"]])
            for key in keys:  # success, by signed callback
                texts += _texts_of(await router.generate("a fox", policy=TWO, job_key=key))
            # forged and stale callbacks against a waiting job's URL
            url = router.webhook_app.callback_url(router.public_url or "", "ok-0")
            async with httpx.AsyncClient() as http:
                for headers in (
                    {"X-Webhook-Timestamp": "1", "X-Webhook-Signature": "AAAA"},
                    {"X-Webhook-Timestamp": "x", "X-Webhook-Signature": HMAC_KEY},
                ):
                    await http.post(url, json={"data": {"taskId": "t"}}, headers=headers)
            emu.configure("*", fail_rate=1.0, fail_msg="internal error")  # failure
            with pytest.raises(kr.KieRouterError) as failed:
                await router.generate("a fox", policy=TWO, job_key="fail-1")
            texts += _texts_of(failed.value)
            emu.configure("*", fail_rate=0.0)
        emu.inject("drop_connection", paths="create", count=1)  # ambiguous, no webhook
        with pytest.raises(kr.AmbiguousSubmissionError) as ambiguous:
            await plain.generate("a fox", policy=TWO, job_key="amb-1")
        texts += _texts_of(ambiguous.value)
        bad = KieClient(WRONG_KEY, base_url=emu.base_url)  # KIE refuses the key
        with pytest.raises(kr.AuthError) as refused:
            await bad.credits()
        texts += _texts_of(refused.value)
        texts += [repr(x) for x in (router, plain, client, bad, config, router.webhook_app)]
        texts += [repr(router.registry), repr(router.journal), repr(backend)]
        await bad.aclose()
        await plain.aclose()
        await client.aclose()
        backend.close()
    texts += [repr(e) for e in events]
    texts += [msgspec.json.encode(e).decode() for e in events]
    texts.append(caplog.text)
    texts += _files_text(log_file.parent)
    texts += _files_text(tmp_path)
    assert len(caplog.records) > 20, "DEBUG logging was not captured"
    assert (tmp_path / "journal.sqlite").stat().st_size > 0
    assert _leaks(texts) == []
    reliability.record(
        "secrets",
        "API and HMAC keys in logs (DEBUG), errors, reprs, results, events, journal",
        tried=len(texts),
        outcome=f"{len(caplog.records)} log records and {len(texts)} texts scanned; none found",
    )


@pytest.mark.slow
async def test_no_secret_in_a_batch_folder(
    tmp_path: Path,
    log_file: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    """A batch run (journal, manifest, settings, images) against the emulator, with the HMAC
    key in the environment: no file in its folder and no log line carries either key."""
    from kierouter.batch import BatchSettings, parse_rows, run_batch

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("KIE_WEBHOOK_HMAC_KEY", HMAC_KEY)
    monkeypatch.setenv("KIE_API_KEY", API_KEY)
    async with Emulator(
        api_key=API_KEY, time_scale=500.0, create_limit=500, create_window=1.0
    ) as emu:
        emu.configure("*", fail_rate=0.3)
        rows = parse_rows("\n".join(f"a fox number {i}" for i in range(12)))
        settings = BatchSettings(
            policy="budget",
            base_url=emu.base_url,
            loopback=True,
            time_scale=500.0,
            create_limit=500,
            create_window=1.0,
            read_rate=500,
        )
        report = await run_batch(rows, tmp_path / "batch", settings, api_key=API_KEY)
    assert report.jobs == 12
    texts = [*_files_text(tmp_path / "batch"), caplog.text, repr(report)]
    texts += _files_text(log_file.parent)
    texts.append(msgspec.json.encode(report).decode())
    assert any(name.endswith(".png") for name in _names(tmp_path / "batch"))
    assert _leaks(texts) == []
    reliability.record(
        "secrets",
        "API and HMAC keys in a batch folder (journal, manifest, settings) and its logs",
        tried=len(texts),
        outcome="none found",
    )
