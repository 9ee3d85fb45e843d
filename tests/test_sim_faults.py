"""Each injectable fault over real HTTP, the limits (402, 429) and fault determinism."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kierouter.sim import Emulator

BODY = {
    "model": "google/nano-banana",
    "input": {"prompt": "a red fox in snow", "aspect_ratio": "1:1"},
}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator at time_scale=1000."""
    async with Emulator(time_scale=1000) as emulator:
        yield emulator


def client(emu: Emulator, **kw: Any) -> httpx.AsyncClient:
    """An httpx client with the emulator's key."""
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    return httpx.AsyncClient(base_url=emu.base_url, headers=headers, **kw)


async def create(http: httpx.AsyncClient, body: dict[str, Any] = BODY) -> httpx.Response:
    """POST a createTask."""
    return await http.post("/api/v1/jobs/createTask", json=body)


async def test_http_429_fault_refuses_the_create_with_retry_after(emu: Emulator) -> None:
    """http_429: HTTP 429, body code 429, Retry-After; the task is not created (not queued)."""
    emu.inject("http_429", count=1, paths=("create",))
    async with client(emu) as http:
        refused = await create(http)
        accepted = await create(http)
    assert refused.status_code == 429 and refused.json()["code"] == 429
    assert refused.headers["retry-after"] == "1"
    assert accepted.json()["code"] == 200
    assert emu.stats()["created_total"] == 1


async def test_after_lets_the_first_matching_requests_through(emu: Emulator) -> None:
    """after=2, count=1 refuses the third create only; status reads are not counted in
    (they do not match ``paths``); a negative ``after`` is refused over the admin API too."""
    emu.inject("code_500", count=1, paths=("create",), after=2)
    async with client(emu) as http:
        codes = []
        for _ in range(4):
            answer = (await create(http)).json()
            codes.append(answer["code"])
            if answer["code"] == 200:
                await http.get(
                    "/api/v1/jobs/recordInfo", params={"taskId": answer["data"]["taskId"]}
                )
        bad = await http.post("/_sim/inject", json={"kind": "http_500", "after": -1})
    assert codes == [200, 200, 500, 200]
    assert emu.stats()["created_total"] == 3
    assert bad.status_code == 400 and "after" in bad.text


@pytest.mark.parametrize(
    ("kind", "code"), [("code_455", 455), ("code_500", 500), ("code_550", 550)]
)
async def test_body_code_faults_answer_http_200(emu: Emulator, kind: str, code: int) -> None:
    """code_455/500/550: HTTP 200 with the code in the body, and no task created."""
    emu.inject(kind, count=1)
    async with client(emu) as http:
        answer = await create(http)
    assert answer.status_code == 200
    assert answer.json()["code"] == code and answer.json()["data"] is None
    assert emu.stats()["created_total"] == 0
    assert emu.stats()["rejected"][str(code)] == 1


async def test_http_500_fault_on_status_reads_only(emu: Emulator) -> None:
    """http_500 with paths=("status",): reads fail with HTTP 500, creates still work."""
    emu.inject("http_500", paths=("status",))
    async with client(emu) as http:
        task_id = (await create(http)).json()["data"]["taskId"]
        read = await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
        credit = await http.get("/api/v1/chat/credit")
    assert read.status_code == 500 and read.json()["code"] == 500
    assert credit.status_code == 200


async def test_drop_connection_on_create_loses_the_answer_not_the_task(emu: Emulator) -> None:
    """drop_connection on a create: no answer at all, yet the task exists (an ambiguous submit)."""
    emu.inject("drop_connection", count=1, paths=("create",))
    async with client(emu) as http:
        with pytest.raises(httpx.TransportError):
            await create(http)
    (task,) = emu.tasks()
    assert task["model"] == "google/nano-banana"
    assert emu.stats()["created_total"] == 1


async def test_drop_connection_on_reads(emu: Emulator) -> None:
    """drop_connection on credit: the socket closes with no answer."""
    emu.inject("drop_connection", count=1, paths=("credit",))
    async with client(emu) as http:
        with pytest.raises(httpx.TransportError):
            await http.get("/api/v1/chat/credit")
        again = await http.get("/api/v1/chat/credit")
    assert again.json()["code"] == 200


async def test_slow_response_outlasts_a_client_read_timeout(emu: Emulator) -> None:
    """slow_response holds the answer beyond the client's read timeout."""
    emu.inject("slow_response", count=1, paths=("credit",), seconds=2.0)
    async with client(emu, timeout=httpx.Timeout(0.2)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/api/v1/chat/credit")
        fine = await http.get("/api/v1/chat/credit")
    assert fine.json()["code"] == 200


async def test_malformed_body_is_not_json(emu: Emulator) -> None:
    """malformed_body: HTTP 200 whose body does not parse as JSON."""
    emu.inject("malformed_body", count=1, paths=("status",))
    async with client(emu) as http:
        task_id = (await create(http)).json()["data"]["taskId"]
        broken = await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()


async def test_faults_are_deterministic_for_a_seed() -> None:
    """The same seed and rate fault the same requests; another seed differs."""

    async def pattern(seed: int) -> list[int]:
        async with Emulator(seed=seed) as emu:
            emu.inject("code_455", rate=0.5, paths=("credit",))
            async with client(emu) as http:
                return [(await http.get("/api/v1/chat/credit")).json()["code"] for _ in range(24)]

    first, again, other = await pattern(7), await pattern(7), await pattern(8)
    assert first == again
    assert first != other
    assert 455 in first and 200 in first


async def test_402_when_the_balance_cannot_pay() -> None:
    """Creates answer 402 once the balance (less running tasks) is below the price."""
    async with Emulator(time_scale=1e-6, credits=10.0) as emu, client(emu) as http:
        first = await create(http)  # 4 credits, reserved while it runs
        second = await create(http)
        third = await create(http)  # 8 reserved, 2 left: refused
        emu.advance(10_000)
        fourth = await create(http)  # balance now 2: refused
        credit = await http.get("/api/v1/chat/credit")
    assert [r.json()["code"] for r in (first, second, third, fourth)] == [200, 200, 402, 402]
    assert credit.json()["data"] == 2.0
    assert emu.stats()["rejected"]["402"] == 2
    assert emu.stats()["credits_charged"] == 8.0


async def test_failed_tasks_cost_nothing() -> None:
    """A task that fails is not charged and frees its reservation."""
    async with Emulator(time_scale=1e-6, credits=4.0) as emu:
        emu.configure("nano-banana", fail_rate=1.0, fail_code=501)
        async with client(emu) as http:
            task_id = (await create(http)).json()["data"]["taskId"]
            emu.advance(10_000)
            data = (await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})).json()
            emu.configure("nano-banana", fail_rate=0.0)
            again = await create(http)
    assert data["data"]["state"] == "fail" and data["data"]["failCode"] == "501"
    assert data["data"]["resultJson"] == ""
    assert again.json()["code"] == 200
    assert emu.stats()["credits_charged"] == 0


async def test_429_above_the_create_rate() -> None:
    """More than create_limit creates in the window get HTTP 429 with code 429 and Retry-After."""
    async with Emulator(create_limit=3, create_window=10.0) as emu, client(emu) as http:
        answers = [await create(http) for _ in range(5)]
        reads = await http.get("/api/v1/chat/credit")
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[3].json()["code"] == 429
    assert 1 <= int(answers[3].headers["retry-after"]) <= 10
    assert reads.status_code == 200  # reads do not count against the create limit
    assert emu.stats()["created_total"] == 3
    assert emu.stats()["rejected"]["429"] == 2


async def test_status_read_limit() -> None:
    """With read_limit set, a burst of status reads above it gets 429."""
    async with Emulator(read_limit=2) as emu, client(emu) as http:
        codes = [
            (await http.get("/api/v1/jobs/recordInfo", params={"taskId": "x" * 32})).status_code
            for _ in range(4)
        ]
    assert codes[:2] == [200, 200]
    assert 429 in codes[2:]


async def test_never_finish_rate_keeps_a_task_pending() -> None:
    """never_finish_rate=1: the task stays pending however far the clock moves."""
    async with Emulator() as emu:
        emu.configure("*", never_finish_rate=1.0)
        async with client(emu) as http:
            task_id = (await create(http)).json()["data"]["taskId"]
            emu.advance(100_000)
            data = (await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})).json()
    assert data["data"]["state"] == "generating"
    assert data["data"]["completeTime"] is None


async def test_time_scale_and_advance_move_tasks_along() -> None:
    """At a tiny time scale a task stays pending until the clock is advanced past its latency."""
    async with Emulator(time_scale=1e-6) as emu:
        emu.configure("google/nano-banana", latency=(30, 30))
        async with client(emu) as http:
            task_id = (await create(http)).json()["data"]["taskId"]
            states = []
            for step in (1, 3, 20, 10):
                emu.advance(step)
                data = await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
                states.append(data.json()["data"]["state"])
    assert states == ["waiting", "queuing", "generating", "success"]


async def test_a_fast_time_scale_finishes_without_advancing() -> None:
    """At time_scale=1000 a 30 s task finishes within a fraction of a real second."""
    async with Emulator(time_scale=1000) as emu:
        emu.configure("google/nano-banana", latency=(30, 30))
        async with client(emu) as http:
            task_id = (await create(http)).json()["data"]["taskId"]
            for _ in range(300):
                data = await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
                if (data.json()["data"] or {}).get("state") == "success":
                    break
                await asyncio.sleep(0.01)
    assert data.json()["data"]["costTime"] == 30


async def test_task_ids_are_reproducible_only_with_a_chosen_seed() -> None:
    """With seed= the same ids come back run after run; without one each run has fresh ids."""

    async def first_id(**options: Any) -> str:
        async with Emulator(**options) as emu, client(emu) as http:
            task_id: str = (await create(http)).json()["data"]["taskId"]
            return task_id

    assert await first_id(seed=5) == await first_id(seed=5)
    assert await first_id() != await first_id()
