"""RequestBuilder builds the request ``AsyncClient.build_request`` would (kierouter._requests)."""

from __future__ import annotations

import httpx
import pytest

from kierouter import KieClient
from kierouter._requests import _CACHE_LIMIT, RequestBuilder

STATUS = "https://api.kie.ai/api/v1/jobs/recordInfo"
CREATE = "https://api.kie.ai/api/v1/jobs/createTask"
AUTH = {"Authorization": "Bearer sk-test"}


def _same(built: httpx.Request, expected: httpx.Request) -> None:
    assert built.method == expected.method
    assert str(built.url) == str(expected.url)
    assert built.headers.raw == expected.headers.raw  # names, values and order
    assert built.content == expected.content
    assert built.extensions == expected.extensions


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(headers={"User-Agent": "kierouter-test"}, timeout=httpx.Timeout(7.0))


CALLS = [
    ("GET", STATUS, {"taskId": "abc123"}, None, AUTH),
    ("GET", STATUS, {"taskId": "a b/c?&=é+"}, None, AUTH),  # quoting as httpx quotes
    ("POST", CREATE, None, b'{"model":"x"}', {**AUTH, "Content-Type": "application/json"}),
    ("GET", "https://api.kie.ai/api/v1/chat/credit", None, None, AUTH),
    ("GET", STATUS + "?from=1", {"taskId": "t-1"}, None, AUTH),  # a query to merge with
    ("POST", "https://tempfile.example/upload", None, b"", {"User-Agent": "override"}),
]


@pytest.mark.parametrize(("method", "url", "params", "content", "headers"), CALLS)
def test_builds_what_build_request_builds(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    params: dict[str, str] | None,
    content: bytes | None,
    headers: dict[str, str],
) -> None:
    builder = RequestBuilder(client)
    expected = client.build_request(method, url, params=params, content=content, headers=headers)
    for _ in range(2):  # the first call parses and merges, the second reuses
        built = builder.build(method, url, params=params, content=content, headers=headers)
        _same(built, expected)


def test_client_cookies_are_sent(client: httpx.AsyncClient) -> None:
    builder = RequestBuilder(client)
    assert "cookie" not in builder.build("GET", STATUS, headers=AUTH).headers
    client.cookies.set("__cf_bm", "abc", domain="api.kie.ai")
    built = builder.build("GET", STATUS, params={"taskId": "t"}, headers=AUTH)
    assert built.headers["cookie"] == "__cf_bm=abc"
    _same(built, client.build_request("GET", STATUS, params={"taskId": "t"}, headers=AUTH))


def test_a_change_to_the_client_headers_is_seen(client: httpx.AsyncClient) -> None:
    builder = RequestBuilder(client)
    builder.build("GET", STATUS, headers=AUTH)
    client.headers["X-Trace"] = "on"
    client.headers["User-Agent"] = "changed"
    built = builder.build("GET", STATUS, headers=AUTH)
    assert built.headers["x-trace"] == "on"
    assert built.headers["user-agent"] == "changed"
    _same(built, client.build_request("GET", STATUS, headers=AUTH))


def test_many_urls_are_built_but_not_all_remembered(client: httpx.AsyncClient) -> None:
    builder = RequestBuilder(client)
    for i in range(_CACHE_LIMIT + 10):
        url = f"https://files.example/{i}.png"
        _same(builder.build("GET", url, headers={}), client.build_request("GET", url))
    assert len(builder._urls) == _CACHE_LIMIT


def test_each_request_has_its_own_headers_and_extensions(client: httpx.AsyncClient) -> None:
    """The cached header set is copied into each request: a transport that edits one request
    (httpx sets Host and Content-Length on it) does not edit the next."""
    builder = RequestBuilder(client)
    first = builder.build("POST", CREATE, content=b"{}", headers=AUTH)
    first.headers["X-Edited"] = "1"
    first.extensions["sni_hostname"] = "edited"
    second = builder.build("POST", CREATE, content=b"{}", headers=AUTH)
    assert "x-edited" not in second.headers
    assert "sni_hostname" not in second.extensions


async def test_kie_client_sends_through_the_builder() -> None:
    """Creates and reads go out with the client's default headers, the key per request, the
    query and body intact, and a Cookie header once KIE (Cloudflare) set one."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("createTask"):
            headers = {"set-cookie": "__cf_bm=xyz; Path=/; Domain=kie.test"}
            body = {"code": 200, "msg": "success", "data": {"taskId": "t-9"}}
            return httpx.Response(200, json=body, headers=headers)
        return httpx.Response(200, json={"code": 200, "msg": "success", "data": {"ok": 1}})

    kie = KieClient(
        "sk-test", base_url="https://api.kie.test", transport=httpx.MockTransport(handler)
    )
    async with kie:
        await kie.create("/api/v1/jobs/createTask", {"model": "m", "input": {"prompt": "é"}})
        await kie.read("/api/v1/jobs/recordInfo", {"taskId": "t-9"})
    create, read = seen
    assert create.method == "POST"
    assert create.content == '{"model":"m","input":{"prompt":"é"}}'.encode()
    assert create.headers["content-type"] == "application/json"
    assert read.url.params["taskId"] == "t-9" and read.method == "GET"
    for request in seen:
        assert request.headers["authorization"] == "Bearer sk-test"
        assert request.headers["user-agent"].startswith("kierouter/")
        assert request.headers["accept-encoding"]
    assert "cookie" not in create.headers
    assert read.headers["cookie"] == "__cf_bm=xyz"
