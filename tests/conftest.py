"""Fixtures shared by the emulator tests: an emulator whose clock only moves when advanced."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from kierouter.sim import Emulator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator whose clock moves only when advanced (``emu.advance(seconds)``)."""
    async with Emulator(time_scale=1e-6) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the emulator's key (the admin API needs none)."""
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    async with httpx.AsyncClient(base_url=emu.base_url, headers=headers) as client:
        yield client
