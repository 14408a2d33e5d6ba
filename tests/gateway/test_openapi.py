"""/openapi.json is an OpenAPI 3.1 document of exactly the route table, and
/docs serves Swagger UI from the installed package."""
from __future__ import annotations

import json

import pytest

from tests.gateway.conftest import make_world


@pytest.fixture(scope="module")
def w():
    return make_world()


@pytest.fixture(scope="module")
def doc(w):
    r = w.client.request("GET", "/openapi.json")
    assert r.status == 200
    return json.loads(r.proto.body)


def test_the_document_is_openapi_3_1_and_lists_every_route(w, doc):
    assert doc["openapi"] == "3.1.0"
    listed = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert listed == {(r.method, r.path) for r in w.app.routes}
    assert len(w.app.routes) == 22
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_the_document_validates_against_the_openapi_3_1_schema(doc):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)


def test_every_ref_resolves(doc):
    schemas = doc["components"]["schemas"]

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc)


def test_signed_routes_name_the_zxinf_scheme_and_jwt_routes_bearer(w, doc):
    assert doc["components"]["securitySchemes"]["ZXINF"] == {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": doc["components"]["securitySchemes"]["ZXINF"]["description"]}
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for r in w.app.routes:
        op = doc["paths"][r.path][r.method.lower()]
        expected = {"signed": [{"ZXINF": []}], "admin": [{"ZXINF": []}], "jwt": [{"bearer": []}]}.get(r.auth)
        assert op.get("security") == expected, r.path


def test_bodies_query_and_path_parameters_are_described(doc):
    place = doc["paths"]["/api/v1/private/order"]["post"]
    assert place["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PlaceOrder"}
    assert doc["components"]["schemas"]["PlaceOrder"]["additionalProperties"] is False
    orders = doc["paths"]["/api/v1/private/orders"]["get"]
    assert {p["name"]: p["in"] for p in orders["parameters"]} == {"symbol": "query", "status": "query",
                                                                  "limit": "query"}
    one = doc["paths"]["/api/v1/private/order/{order_id}"]["delete"]
    assert one["parameters"][0]["name"] == "order_id" and one["parameters"][0]["in"] == "path"
    register = doc["paths"]["/api/v1/auth/register"]["post"]
    assert "201" in register["responses"]


def test_docs_answers_swagger_ui_html_and_its_files_offline(w):
    r = w.client.request("GET", "/docs")
    assert r.status == 200 and r.proto.headers[0] == ("content-type", "text/html; charset=utf-8")
    assert b"swagger-ui-bundle.js" in r.proto.body and b"/openapi.json" in r.proto.body
    assert b"http" not in r.proto.body.split(b"<body>")[1], "no CDN link"
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = w.client.request("GET", f"/docs/{name}")
        assert r.status == 200 and r.proto.file.endswith(name)
        with open(r.proto.file, "rb") as f:
            assert len(f.read()) > 1000


def test_docs_serves_no_other_file(w):
    for path in ("/docs/../../gateway/auth.py", "/docs/index.j2", "/docs/swagger-ui.js.map"):
        r = w.client.request("GET", path)
        assert (r.status, r.code) == (404, 4004)
