"""Wire-level tests with httpx.MockTransport: every KIE call is answered by a function."""

from __future__ import annotations

import json

import httpx
from kierouter import Policy, Router

import kierouter_example

RESULT_URL = "https://tempfile.aiquickdraw.com/workers/nano/image_1.png"


def kie(request: httpx.Request) -> httpx.Response:
    """KIE's answers for one task that succeeds at once (HTTP 200 and code 200 in the body)."""
    if request.url.path == "/api/v1/jobs/createTask":
        data: dict[str, object] = {"taskId": "task-1"}
    elif request.url.path == "/api/v1/jobs/recordInfo":
        result = json.dumps({"resultUrls": [RESULT_URL]})
        data = {"taskId": "task-1", "state": "success", "resultJson": result}
    else:
        return httpx.Response(404)
    return httpx.Response(200, json={"code": 200, "msg": "success", "data": data})


async def test_router_sends_the_plugins_body_and_reads_the_answer() -> None:
    """The router posts the plugin's body with the key, polls, and serves the result URL."""
    sent: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return kie(request)

    async with Router(
        plugins=[kierouter_example],
        api_key="test-key",
        transport=httpx.MockTransport(recording),
        policy=Policy(name="wan-only", ladder=("wan",)),
        latency_scale=1 / 1000,  # do not wait the model's real latency before polling
    ) as router:
        result = await router.generate("a red fox in snow")  # no out_dir: URLs only
    assert result.served_model == "wan/2-7-image"
    assert result.urls == (RESULT_URL,)
    create = sent[0]
    assert create.headers["Authorization"] == "Bearer test-key"
    assert json.loads(create.content)["input"]["prompt"] == "a red fox in snow"
