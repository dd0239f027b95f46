"""The socket's AsyncAPI document: served, valid against the official AsyncAPI 2.6.0 JSON Schema
(tests/data, from the @asyncapi/specs package), linked from the docs, and true to the handler:
every message a live socket sends validates against the documented payload of its type."""

import json
from datetime import timedelta
from pathlib import Path

import jsonschema_rs
import pytest

import handlers.websocket
from models.foundation.clock import platform_today
from server.asyncapi import CLIENT_MESSAGES, SERVER_MESSAGES

from .ws_support import receive, send

ASYNCAPI_SCHEMA = json.loads((Path(__file__).parent / "data" / "asyncapi-2.6.0.schema.json").read_text())


async def get_document(api):
    response = await api.get("/api/asyncapi.json")
    assert response.status == 200
    return response.data


def payload_validator(document, kind):
    return jsonschema_rs.Draft7Validator(document["components"]["messages"][kind]["payload"])


def assert_documented(document, message):
    assert message["type"] in SERVER_MESSAGES, message
    errors = [str(e) for e in payload_validator(document, message["type"]).iter_errors(message)]
    assert not errors, (message, errors)


@pytest.mark.gen_test
async def test_the_document_is_valid_asyncapi_2_6(api):
    document = await get_document(api)

    validator = jsonschema_rs.Draft7Validator(ASYNCAPI_SCHEMA)
    assert [str(e) for e in validator.iter_errors(document)] == []
    assert not validator.is_valid({**document, "channels": {"/ws/": {"publish": {"message": {"payload": 3}}}}})


@pytest.mark.gen_test
async def test_it_documents_each_message_type_once_with_a_valid_example(api):
    document = await get_document(api)
    channel = document["channels"]["/ws/"]
    sent = [ref["$ref"].rsplit("/", 1)[1] for ref in channel["publish"]["message"]["oneOf"]]
    pushed = [ref["$ref"].rsplit("/", 1)[1] for ref in channel["subscribe"]["message"]["oneOf"]]

    assert sent == list(CLIENT_MESSAGES) == ["auth", "resume", "ping"]
    assert pushed == list(SERVER_MESSAGES) == ["ready", "notification", "unread_count", "pong"]
    for kind, message in document["components"]["messages"].items():
        for example in message["examples"]:
            assert payload_validator(document, kind).is_valid(example["payload"]), kind


@pytest.mark.gen_test
async def test_every_close_code_of_the_handler_is_documented(api):
    document = await get_document(api)
    documented = {item["code"] for item in document["x-close-codes"]}
    used = {value for name, value in vars(handlers.websocket).items() if name.startswith("CLOSE_")}

    assert used and used <= documented
    assert {1009, 4003} <= documented
    description = document["channels"]["/ws/"]["description"]
    assert all(f"`{code}`" in description for code in documented)


@pytest.mark.gen_test
async def test_what_a_live_socket_says_matches_the_document(api, sockets, client_user, category):
    document = await get_document(api)
    ws, ready = await sockets.signed_in(api.token(client_user))
    assert_documented(document, ready)
    booking = {
        "category_id": category.id,
        "address": "12 Allen Avenue, Ikeja",
        "description": "Sink leaking",
        "booking_date": str(platform_today(api.settings.zone) + timedelta(days=5)),
    }
    assert (await api.post("/api/requests/", booking, user=client_user)).status == 201

    pushes = [await receive(ws), await receive(ws)]  # the notification and the new unread count
    await send(ws, {"type": "resume", "since": 0})
    pushes.append(await receive(ws))
    await send(ws, {"type": "ping"})
    pushes.append(await receive(ws))

    assert sorted(p["type"] for p in pushes) == ["notification", "notification", "pong", "unread_count"]
    for message in pushes:
        assert_documented(document, message)


@pytest.mark.gen_test
async def test_the_docs_page_links_it_and_swagger_keeps_authorization(api):
    page = await api.client.fetch(api.base_url + "/api/docs/")
    init = await api.client.fetch(api.base_url + "/api/docs/init.js")
    openapi = (await api.get("/api/schema/")).data

    assert b'href="/api/asyncapi.json"' in page.body
    assert b"persistAuthorization: true" in init.body
    assert "/api/asyncapi.json" in openapi["info"]["description"]
