"""The OpenAPI document and Swagger UI, checked against the route table and each @endpoint."""
import json
import re
from html.parser import HTMLParser

import pytest
import tornado.httpclient
import tornado.web

from handlers.base import ANYONE, HTTP_METHODS, SIGNED_IN
from server.routes import route_table

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def declared_operations():
    """(openapi path, method, endpoint, path parameter names) for every declared handler method."""
    ops = []
    for route in route_table():
        pattern, handler = route[0], route[1]
        if issubclass(handler, tornado.web.StaticFileHandler):
            continue
        path = _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern)
        assert "(" not in path, f"unnamed group in {pattern}: it cannot be documented"
        for name in HTTP_METHODS:
            spec = getattr(getattr(handler, name, None), "endpoint", None)
            if spec is not None:
                ops.append((path, name, spec, _GROUP.findall(pattern)))
    return ops


OPERATIONS = declared_operations()


def op_id(op):
    return f"{op[1].upper()} {op[0]}"


def expected_error_statuses(spec, path_params):
    """What the base handler can answer for this declaration, beyond what the endpoint lists."""
    statuses = set(spec.errors)
    if spec.requires_auth:
        statuses.add(401)
    if not ({ANYONE, SIGNED_IN} & set(spec.roles)):
        statuses.add(403)
    if spec.body is not None:
        statuses |= {400, 422}
    if spec.query is not None:
        statuses.add(422)
    if path_params:
        statuses.add(404)
    return statuses


async def fetch(base_url, path):
    return await tornado.httpclient.AsyncHTTPClient().fetch(base_url + path, raise_error=False)


async def get_document(api):
    response = await api.get("/api/schema/")
    assert response.status == 200, response
    assert response.headers["Content-Type"].startswith("application/json")
    return response.data


def resolve(document, ref):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        assert part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def all_refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from all_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_refs(item)


# --- the document as a whole ------------------------------------------------------------------


@pytest.mark.gen_test
async def test_schema_is_openapi_3_json(api):
    document = await get_document(api)
    assert isinstance(document["openapi"], str) and document["openapi"].startswith("3.")
    assert document["info"]["title"] and document["info"]["version"]
    assert document["paths"]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    body = resolve(document, error["properties"]["error"]["$ref"])
    assert {"code", "message", "fields", "request_id"} <= set(body["properties"])
    assert set(body["required"]) == {"code", "message"}


@pytest.mark.gen_test
async def test_every_reference_resolves(api):
    document = await get_document(api)
    refs = set(all_refs(document))
    assert refs
    for ref in refs:
        resolve(document, ref)


@pytest.mark.gen_test
async def test_paths_are_exactly_the_declared_routes(api):
    document = await get_document(api)
    declared = {}
    for path, method, _, _ in OPERATIONS:
        declared.setdefault(path, set()).add(method)
    documented = {path: {m for m in item if m in HTTP_METHODS} for path, item in document["paths"].items()}
    assert documented == declared


@pytest.mark.gen_test
async def test_operation_ids_are_unique(api):
    document = await get_document(api)
    ids = [op["operationId"] for item in document["paths"].values()
           for method, op in item.items() if method in HTTP_METHODS]
    assert len(ids) == len(set(ids)) == len(OPERATIONS)


@pytest.mark.gen_test
async def test_validates_with_openapi_spec_validator_when_installed(api):
    document = await get_document(api)
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)


# --- each operation ---------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
async def test_operation_matches_its_declaration(api, op):
    document = await get_document(api)
    path, method, spec, path_params = op
    assert path in document["paths"], path
    operation = document["paths"][path].get(method)
    assert operation is not None, f"{method.upper()} {path} is not documented"
    assert operation["summary"] == spec.summary

    # Path parameters: exactly the route's named groups, required; ids (\d+) are integers, any
    # other group a string with the route's pattern.
    params = operation.get("parameters", [])
    in_path = {p["name"]: p for p in params if p["in"] == "path"}
    assert set(in_path) == set(path_params)
    for param in in_path.values():
        assert param["required"] is True
        assert param["schema"]["type"] == "integer" or param["schema"]["pattern"], param
    if spec.query is not None:
        in_query = {p["name"] for p in params if p["in"] == "query"}
        assert in_query == set(spec.query().fields), in_query
        if spec.paginated:
            assert {"page", "page_size"} <= in_query

    # Responses: the success status and every error the handler can answer, in the error shape.
    responses = operation["responses"]
    assert str(spec.status) in responses
    ok = responses[str(spec.status)]
    if spec.status == 204:
        assert "content" not in ok
    elif spec.response is not None:
        schema = resolve(document, ok["content"]["application/json"]["schema"]["$ref"])
        if spec.paginated:
            assert set(schema["required"]) == {"count", "next", "previous", "results"}
    for status in sorted(expected_error_statuses(spec, path_params)):
        assert str(status) in responses, f"{status} missing from {method.upper()} {path}"
        content = responses[str(status)].get("content", {}).get("application/json", {})
        assert content.get("schema") == {"$ref": "#/components/schemas/Error"}, status
        assert responses[str(status)]["description"]

    # Security: every signed-in operation says bearerAuth; public ones say nothing.
    if spec.requires_auth:
        assert operation.get("security") == [{"bearerAuth": []}]
        assert ("Any signed-in user." in operation["description"] if SIGNED_IN in spec.roles
                else all(role in operation["description"] for role in spec.roles))
    else:
        assert not operation.get("security")

    # Request bodies: required, JSON, a component schema with the same fields and required list.
    if spec.body is None:
        assert "requestBody" not in operation
    else:
        body = operation["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref.startswith("#/components/schemas/")
        component = resolve(document, ref)
        loadable = {name for name, field in spec.body().fields.items() if not field.dump_only}
        required = {name for name, field in spec.body().fields.items() if field.required}
        # An absent body reads as {}: the body is required exactly when some field is.
        assert body["required"] is bool(required)
        assert loadable <= set(component["properties"]), ref
        assert set(component.get("required", [])) == required, ref


# --- Swagger UI -------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.gen_test
async def test_docs_page_uses_only_local_assets(api, base_url):
    response = await fetch(base_url, "/api/docs/")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.body.decode()
    assert "http://" not in html and "https://" not in html and "//cdn" not in html

    parser = _Links()
    parser.feed(html)
    assert parser.urls
    for url in parser.urls:
        assert url.startswith("/api/docs/") and not url.startswith("//"), url
    assets = [url for url in parser.urls if url.startswith("/api/docs/assets/")]
    assert "/api/docs/assets/swagger-ui-bundle.js" in assets
    assert "/api/docs/assets/swagger-ui.css" in assets
    for url in parser.urls:
        served = await fetch(base_url, url)
        assert served.code == 200, url
        assert served.body, url


@pytest.mark.gen_test
async def test_swagger_ui_bundle_is_served(api, base_url):
    response = await fetch(base_url, "/api/docs/assets/swagger-ui-bundle.js")
    assert response.code == 200
    assert "javascript" in response.headers["Content-Type"]
    assert b"SwaggerUIBundle" in response.body


@pytest.mark.gen_test
async def test_swagger_ui_loads_this_servers_schema(api, base_url):
    response = await fetch(base_url, "/api/docs/init.js")
    assert response.code == 200
    script = response.body.decode()
    assert 'url: "/api/schema/"' in script
    assert "http://" not in script and "https://" not in script


@pytest.mark.gen_test
async def test_docs_and_schema_answer_without_trailing_slash(api, base_url):
    for path in ("/api/docs", "/api/schema"):
        with_slash, without = await fetch(base_url, path + "/"), await fetch(base_url, path)
        assert with_slash.code == without.code == 200
        assert with_slash.body == without.body
    json.loads(without.body)
