"""The ledger's OpenAPI document and the Flask app describe the same API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import schemathesis
from flask.testing import FlaskClient
from schemathesis.core.result import Ok

from ledger_svc.web import app as web_app
from tests.unit.test_web import make_settings

DOCUMENT = Path(web_app.__file__).with_name("openapi.json")


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return loaded


def test_every_route_is_described_and_every_description_is_a_route(tmp_path: Path) -> None:
    app = web_app.create_app(make_settings(tmp_path))
    routes = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, item in document()["paths"].items() for method in item}
    assert routes == described


def test_the_entries_parameters_are_the_ones_the_app_accepts() -> None:
    operation = document()["paths"]["/v1/entries"]["get"]
    assert tuple(p["name"] for p in operation["parameters"]) == web_app.ENTRIES_PARAMETERS
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (
        1,
        web_app.MAX_PAGE,
        web_app.DEFAULT_PAGE,
    )


def test_the_document_is_served_and_loads_as_openapi_3_1(tmp_path: Path) -> None:
    client: FlaskClient = web_app.create_app(make_settings(tmp_path)).test_client()
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == document()
    operations = list(schemathesis.openapi.from_dict(document()).get_all_operations())
    assert len(operations) == len(document()["paths"])
    assert all(isinstance(result, Ok) for result in operations), operations
