"""The lab partner mocked with `responses` (a pytest plugin loaded by tests/conftest.py)."""

from __future__ import annotations

import json
import re

import pytest
import responses
from django.conf import settings

TOKEN = "header.payload.signature"


class Partner:
    """Register the partner's answers by operation, in the reference's shapes."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.api = settings.EVERLYWELL_API_URL
        self.auth = settings.EVERLYWELL_AUTH_URL
        self.token = mock.get(f"{self.auth}/v1/token", json={"token": TOKEN})

    def create_order(self, *, id=1, amount=199.0, status=201, **kwargs):
        if "body" not in kwargs:
            kwargs.setdefault("json", {"id": id, "amount": amount} if status < 300 else {"error": "refused"})
        return self.mock.post(f"{self.api}/v2/orders/", status=status, **kwargs)

    def get_order(self, order_id, *, state="processing", status=200, **kwargs):
        if "body" not in kwargs:
            kwargs.setdefault("json", {"id": order_id, "state": state})
        return self.mock.get(f"{self.api}/v2/orders/{order_id}", status=status, **kwargs)

    def register_kit(self, invoice_id, *, id=1, kit_id="1a2b3c4d5e", user_id=77, state="registred", status=201, **kw):
        if "body" not in kw:
            kw.setdefault("json", {"id": id, "state": state, "kit_id": kit_id, "user_id": user_id})
        return self.mock.post(f"{self.api}/v1/kits/{invoice_id}/registration", status=status, **kw)

    def get_result(self, result_id, *, state="ready", status=200, **kwargs):
        if "body" not in kwargs:
            kwargs.setdefault("json", {"id": result_id, "state": state})
        return self.mock.get(f"{self.api}/v1/results/{result_id}", status=status, **kwargs)

    def get_result_any(self, *, state="ready"):
        """Answer every result id with `state`."""

        def callback(request):
            result_id = int(request.url.rstrip("/").rsplit("/", 1)[-1])
            return 200, {}, json.dumps({"id": result_id, "state": state})

        return self.mock.add_callback(
            responses.GET, re.compile(re.escape(f"{self.api}/v1/results/") + r"\d+"), callback=callback
        )

    def calls_to(self, path_fragment: str, method: str = "") -> list:
        return [
            c for c in self.mock.calls if path_fragment in c.request.url and (not method or c.request.method == method)
        ]


@pytest.fixture
def partner(monkeypatch):
    """The partner mocked; the process's client never sleeps between retries."""
    from django.core.cache import cache

    from portal.upstream import client as client_module

    cache.clear()
    client_module.reset_client()
    no_sleep_client = client_module.EverlywellClient(sleep=lambda seconds: None)
    monkeypatch.setattr(client_module, "get_client", lambda: no_sleep_client)
    for module in ("orders", "kits", "results"):
        monkeypatch.setattr(f"portal.{module}.services.get_client", lambda: no_sleep_client)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield Partner(mock)
    no_sleep_client.close()
