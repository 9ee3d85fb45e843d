"""kierouter.sim: a KIE.ai emulator on loopback, for tests, demos and benchmarks.

It speaks KIE's real endpoints and shapes (Market createTask/recordInfo, the GPT-4o image,
Flux Kontext and Midjourney APIs, credit, download-url, uploads), validates inputs with KIE's
codes, serves real PNGs, charges credits, limits rates, posts signed callbacks with retries,
and injects faults on request. Time is emulated: ``time_scale=100`` finishes a 46 s job in
0.46 s. A scenario (TOML or dict) sets it up, including Market models it does not ship
(``[market_models."id"]``); ``docs/emulator.md`` describes every setting, fault and admin call.

::

    from kierouter.sim import Emulator

    async with Emulator(time_scale=100) as emu:
        client = KieClient(emu.api_key, base_url=emu.base_url)
        ...
        emu.configure("seedream", fail_rate=1.0)
        emu.inject("http_500", rate=0.2, paths=("status",))
        emu.advance(1200)
        emu.stats()

Importing this package imports httpx (for callbacks); ``import kierouter`` never imports it.
"""

from __future__ import annotations

from ._callbacks import sign
from ._catalog import CATALOG
from ._emulator import Emulator, in_thread
from ._faults import FAULT_KINDS, PATH_KINDS
from ._scenario import Scenario, load_scenario
from ._state import ModelConfig

__all__ = [
    "CATALOG",
    "FAULT_KINDS",
    "PATH_KINDS",
    "Emulator",
    "ModelConfig",
    "Scenario",
    "in_thread",
    "load_scenario",
    "sign",
]
