"""KieClient records a missing sniffio once, so httpcore's per-request look-up fails at once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kierouter._transport import KieClient, _skip_missing_sniffio
from kierouter.sim import Emulator


def test_missing_sniffio_is_recorded_and_requests_still_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With sniffio not importable, it is marked absent and importing it fails at once."""
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not (Path(p) / "sniffio").exists()])
    _skip_missing_sniffio()
    assert "sniffio" in sys.modules and sys.modules["sniffio"] is None
    with pytest.raises(ImportError):
        import sniffio  # noqa: F401


async def test_client_over_httpx_works_with_sniffio_marked_absent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real create + status read through the stock httpx transport after the mark."""
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    async with Emulator(time_scale=1000) as emu, KieClient(emu.api_key, base_url=emu.base_url) as c:
        assert await c.credits() > 0
        assert c.http is not None
        if sys.modules.get("sniffio", False) is not None:  # sniffio installed: left alone
            import sniffio

            assert sniffio.current_async_library() == "asyncio"


def test_installed_sniffio_is_left_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """When a sniffio module can be found, nothing is put in sys.modules in its place."""
    (tmp_path / "sniffio.py").write_text("def current_async_library():\n    return 'asyncio'\n")
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    _skip_missing_sniffio()
    assert "sniffio" not in sys.modules
    import sniffio

    assert sniffio.current_async_library() == "asyncio"
    monkeypatch.delitem(sys.modules, "sniffio")
