"""The OpenAPI document and Swagger UI, checked against the route table and each @endpoint."""

import json
import re
from html.parser import HTMLParser

import pytest
import tornado.httpclient
import tornado.web
from marshmallow import Schema, fields
from openapi_spec_validator import OpenAPIV30SpecValidator
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from handlers.base import ANYONE, HTTP_METHODS, SIGNED_IN, BaseHandler, endpoint
from server.openapi import build_spec
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
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
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
    ids = [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]
    assert len(ids) == len(set(ids)) == len(OPERATIONS)


def test_an_operation_id_missing_repeated_or_unreadable_fails_at_import():
    """Ids are declared with the endpoint (`@endpoint(operation_id=...)`) and checked as it is declared."""
    with pytest.raises(TypeError, match="operation_id"):
        endpoint(roles=ANYONE, summary="No id")
    with pytest.raises(ValueError, match="camelCase"):
        endpoint(operation_id="Get-thing", roles=ANYONE, summary="Unreadable id")

    with pytest.raises(ValueError, match="'login'.*already"):

        class AnotherLoginHandler(BaseHandler):
            @endpoint(operation_id="login", roles=ANYONE, summary="Signs in too")
            async def post(self):
                pass


@pytest.mark.gen_test
async def test_the_document_is_valid_openapi(api):
    document = await get_document(api)
    assert document["openapi"].startswith("3.0.")
    OpenAPIV30SpecValidator(document).validate()  # raises on the first problem


@pytest.mark.parametrize(
    "break_it",
    [
        lambda document: document.pop("info"),
        lambda document: next(iter(document["paths"].values())).update(get={"summary": "no responses"}),
        lambda document: document["components"]["schemas"].update(Broken={"type": "not-a-type"}),
    ],
    ids=["no info", "an operation without responses", "a schema of no type"],
)
def test_the_validator_refuses_an_invalid_document(break_it):
    """The check above can fail: the same validator finds a new problem once the real document is broken."""
    document = json.loads(json.dumps(build_spec(route_table())))
    before = problems(document)
    break_it(document)
    assert problems(document) - before
    with pytest.raises(OpenAPIValidationError):
        OpenAPIV30SpecValidator(document).validate()


def problems(document):
    return {error.message for error in OpenAPIV30SpecValidator(document).iter_errors()}


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
        assert (
            "Any signed-in user." in operation["description"]
            if SIGNED_IN in spec.roles
            else all(role in operation["description"] for role in spec.roles)
        )
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


@pytest.mark.gen_test
async def test_every_tag_has_a_description(api):
    document = await get_document(api)
    used = {
        tag
        for item in document["paths"].values()
        for method, op in item.items()
        if method in HTTP_METHODS
        for tag in op["tags"]
    }
    described = {tag["name"]: tag.get("description") for tag in document["tags"]}
    assert len(described) == len(document["tags"])
    assert set(described) == used
    assert all(described.values()), [name for name, text in described.items() if not text]


# --- examples ---------------------------------------------------------------------------------
# Swagger UI's "Example Value" is composed from the `example` of each property (or taken whole
# from an `example` on an enclosing schema or media type). These tests make sure there is one to
# take for every field of every request body and success response, and that each one is valid.

SKIP = {"request": "readOnly", "response": "writeOnly"}  # what Swagger UI leaves out of each example


def missing_examples(document, schema, where, skip, seen=frozenset()):
    """The properties (dotted; `[]` for array items) of `schema` that would show no example."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return []
        seen, schema = seen | {schema["$ref"]}, resolve(document, schema["$ref"])
    if "example" in schema:
        return []
    # Swagger UI shows the first of `anyOf`/`oneOf` (a nullable nested object is `anyOf`), all of `allOf`.
    branches = schema.get("allOf") or schema.get("anyOf", schema.get("oneOf", []))[:1]
    if branches:
        return [name for branch in branches for name in missing_examples(document, branch, where, skip, seen)]
    if "items" in schema:
        return missing_examples(document, schema["items"], f"{where}[]", skip, seen)
    if "properties" in schema:
        return [
            name
            for prop, sub in schema["properties"].items()
            if not sub.get(skip)
            for name in missing_examples(document, sub, f"{where}.{prop}".lstrip("."), skip, seen)
        ]
    return [where or "(the whole body)"]


def example_bodies(document):
    """(operation, "request" or "response", media type object) for each request body and success
    response with content."""
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            name = f"{method.upper()} {path}"
            for media in op.get("requestBody", {}).get("content", {}).values():
                yield name, "request", media
            for status, response in op["responses"].items():
                if status.startswith("2"):
                    for media in response.get("content", {}).values():
                        yield f"{name} {status}", "response", media


def operations_missing_examples(document):
    found = []
    for name, direction, media in example_bodies(document):
        if "example" not in media and "examples" not in media:
            found += [
                f"{name} {direction}: {field}"
                for field in missing_examples(document, media["schema"], "", SKIP[direction])
            ]
    return found


@pytest.mark.gen_test
async def test_every_body_field_has_an_example(api):
    """Give each new field `metadata={"example": ...}` (realistic: naira as "5000.00", Lagos
    addresses, ISO dates); a handler writing its own body sets `response_example`."""
    document = await get_document(api)
    assert not operations_missing_examples(document)


def test_a_field_without_an_example_is_found():
    """The check above bites: a new endpoint with example-less fields, nested or listed, fails it."""

    class Part(Schema):
        code = fields.String(metadata={"example": "PVC-32"})
        size = fields.Integer()

    class Widget(Schema):
        id = fields.Integer(dump_only=True, metadata={"example": 7})
        name = fields.String()
        secret = fields.String(load_only=True)
        tags = fields.List(fields.String())
        parts = fields.List(fields.Nested(Part), metadata={"example": [{"code": "PVC-32", "size": 32}]})
        main_part = fields.Nested(Part, allow_none=True)
        made_on = fields.Date()  # dates, times and money have generic examples

    class WidgetHandler(BaseHandler):
        @endpoint(operation_id="listWidgets", roles=ANYONE, summary="Widgets", response=Widget(), paginated=True)
        async def get(self):
            pass

        @endpoint(
            operation_id="addWidget", roles=ANYONE, summary="Add a widget", body=Widget, response=Widget(), status=201
        )
        async def post(self):
            pass

    class RawHandler(BaseHandler):
        @endpoint(operation_id="getRaw", roles=ANYONE, summary="Raw")
        async def get(self):
            pass

    document = build_spec([(r"/api/widgets/", WidgetHandler), (r"/api/raw/", RawHandler)])
    assert sorted(operations_missing_examples(document)) == sorted(
        [
            "GET /api/widgets/ 200 response: results[].name",
            "GET /api/widgets/ 200 response: results[].tags[]",
            "GET /api/widgets/ 200 response: results[].main_part.size",
            "POST /api/widgets/ request: name",
            "POST /api/widgets/ request: secret",
            "POST /api/widgets/ request: tags[]",
            "POST /api/widgets/ request: main_part.size",
            "POST /api/widgets/ 201 response: name",
            "POST /api/widgets/ 201 response: tags[]",
            "POST /api/widgets/ 201 response: main_part.size",
            "GET /api/raw/ 200 response: (the whole body)",
        ]
    )


def json_schema(document, schema):
    """An OpenAPI 3.0 schema as plain JSON Schema: references inlined, `nullable` as a null branch."""
    if isinstance(schema, list):
        return [json_schema(document, item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return json_schema(document, resolve(document, schema["$ref"]))
    out = {
        key: json_schema(document, value)
        if key in ("items", "additionalProperties", "allOf", "anyOf", "oneOf")
        else {k: json_schema(document, v) for k, v in value.items()}
        if key == "properties"
        else value
        for key, value in schema.items()
        if key not in ("nullable", "example")
    }
    return {"anyOf": [out, {"type": "null"}]} if schema.get("nullable") else out


def assert_valid(document, example, schema, where):
    jsonschema_rs = pytest.importorskip("jsonschema_rs")  # schemathesis's own validator
    validator = jsonschema_rs.Draft7Validator(json_schema(document, schema), validate_formats=True)
    problems = [f"{error.instance_path}: {error.message}" for error in validator.iter_errors(example)]
    assert not problems, f"{where}: example {example!r} does not fit its schema: {problems}"


def examples_in(schema, where):
    """(example, the schema it is given for, where) for each `example` in a schema and its parts."""
    if not isinstance(schema, dict):
        return
    if "example" in schema:
        yield schema["example"], schema, where
    for name, sub in schema.get("properties", {}).items():
        yield from examples_in(sub, f"{where}.{name}")
    for key in ("items", "additionalProperties"):
        yield from examples_in(schema.get(key), f"{where}.{key}")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(key, [])):
            yield from examples_in(sub, f"{where}.{key}.{i}")


@pytest.mark.gen_test
async def test_every_example_fits_its_schema(api):
    document = await get_document(api)
    found = []
    for name, schema in document["components"]["schemas"].items():
        found += examples_in(schema, name)
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            where = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                found += examples_in(param["schema"], f"{where} {param['name']}")
            media_types = [("request", media) for media in op.get("requestBody", {}).get("content", {}).values()]
            media_types += [
                (status, media)
                for status, response in op["responses"].items()
                for media in response.get("content", {}).values()
            ]
            for status, media in media_types:
                found += examples_in(media["schema"], f"{where} {status}")
                if "example" in media:
                    found.append((media["example"], media["schema"], f"{where} {status}"))
    assert len(found) > 300
    for example, schema, where in found:
        assert_valid(document, example, schema, where)


def compose_example(document, schema, skip):
    """The example Swagger UI shows for a schema: its own, or one built from its properties'."""
    if "$ref" in schema:
        schema = resolve(document, schema["$ref"])
    if "example" in schema:
        return schema["example"]
    if "allOf" in schema:
        return {
            key: value for branch in schema["allOf"] for key, value in compose_example(document, branch, skip).items()
        }
    if "anyOf" in schema or "oneOf" in schema:
        return compose_example(document, (schema.get("anyOf") or schema["oneOf"])[0], skip)
    if "items" in schema:
        return [compose_example(document, schema["items"], skip)]
    return {
        name: compose_example(document, sub, skip) for name, sub in schema["properties"].items() if not sub.get(skip)
    }


@pytest.mark.gen_test
async def test_each_shown_example_is_valid(api):
    """The whole example of each body, as Swagger UI composes it, fits its schema; a request's also
    passes the endpoint's own marshmallow schema (lengths, choices, bounds, cross-field rules)."""
    document = await get_document(api)
    for name, direction, media in example_bodies(document):
        example = (
            media["example"] if "example" in media else compose_example(document, media["schema"], SKIP[direction])
        )
        assert_valid(document, example, media["schema"], f"{name} {direction}")
    for path, method, spec, _ in OPERATIONS:
        if spec.body is not None:
            media = document["paths"][path][method]["requestBody"]["content"]["application/json"]
            spec.body().load(compose_example(document, media["schema"], "readOnly"))


ERROR_CODES = {
    410: "cursor_expired",
    400: "malformed_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    409: "invalid_transition",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    502: "payment_provider_unavailable",
    503: "service_unavailable",
}


@pytest.mark.gen_test
@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
async def test_each_error_response_has_an_example_of_its_code(api, op):
    document = await get_document(api)
    path, method, spec, _ = op
    for status, response in document["paths"][path][method]["responses"].items():
        if int(status) < 400:
            continue
        example = response["content"]["application/json"].get("example")
        assert example is not None, f"{status} has no example"
        assert example["error"]["code"] == ERROR_CODES[int(status)], status
        assert example["error"]["message"]
        if status == "422":
            # It names fields the operation reads: its body's, or else its query's, or else its Idempotency-Key.
            schema = spec.body or spec.query
            names = (
                {field.data_key or name for name, field in schema().fields.items()} | {"_schema"}
                if schema
                else {"Idempotency-Key"}
            )
            assert example["error"]["fields"] and set(example["error"]["fields"]) <= names, example


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
    # Scripts and styles are Swagger UI's own files; the only other links are this server's documents.
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert url.startswith("/api/docs/") or url in ("/", "/api/schema/", "/api/asyncapi.json"), url
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
