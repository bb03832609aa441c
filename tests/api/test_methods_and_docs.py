"""HTTP methods (`Allow` on every 405, HEAD wherever GET is) and the offline API docs."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.support.nodes import CLIENT_TOKEN

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_405_names_the_methods_the_path_allows(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    wrong = []
    for path, item in spec["paths"].items():
        allowed = {m.upper() for m in item}
        if "GET" in allowed:
            allowed.add("HEAD")
        for method in set(METHODS) - allowed:
            resp = client.request(method, concrete(path))
            allow = {m.strip() for m in resp.headers.get("Allow", "").split(",") if m.strip()}
            if resp.status_code != 405 or allow != allowed:
                wrong.append((method, path, resp.status_code, resp.headers.get("Allow")))
    assert wrong == []


def test_a_405_is_a_problem_document(client: TestClient) -> None:
    resp = client.delete("/v1/health")
    assert resp.status_code == 405
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.json()["code"] == "method-not-allowed"
    assert resp.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/health", {}),
        ("/v1/ready", {}),
        ("/metrics", {}),
        ("/.well-known/jwks.json", {}),
        ("/v1/inbox", {"Authorization": f"Bearer {CLIENT_TOKEN}"}),
        ("/v1/inbox", {}),  # refused as GET is: 401
        ("/v1/outbox/no-such-id", {"Authorization": f"Bearer {CLIENT_TOKEN}"}),
    ],
)
def test_head_answers_as_get_does_without_a_body(
    client: TestClient, path: str, headers: dict[str, str]
) -> None:
    get = client.get(path, headers=headers)
    head = client.head(path, headers=headers)
    assert head.status_code == get.status_code
    assert head.content == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    if "Content-Length" in get.headers and path != "/metrics":  # metrics change between calls
        assert head.headers["Content-Length"] == get.headers["Content-Length"]


# The pages and every asset they load come from the node: no CDN, no font service, no
# public validator. Any scheme-qualified or protocol-relative URL would reach outside.
_EXTERNAL = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//[^\s\"'<>)]+", re.IGNORECASE)
_ASSETS = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_api_doc_pages_load_nothing_from_outside_the_node(client: TestClient, page: str) -> None:
    resp = client.get(page)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert _EXTERNAL.findall(resp.text) == []
    for asset in _ASSETS.findall(resp.text):
        assert asset.startswith("/"), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset


def test_swagger_ui_loads_the_schema_from_the_node(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "url: '/openapi.json'" in page
    assert '"validatorUrl": null' in page
    assert 'src="/static-offline-docs/swagger-ui-bundle.js"' in page
    assert 'src="/static-offline-docs/redoc.standalone.js"' in client.get("/redoc").text
