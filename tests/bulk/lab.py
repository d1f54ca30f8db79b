"""The lab's kit registration endpoint, answering per patient (by the email sent)."""

from __future__ import annotations

import itertools
import json
import re

import responses

# Lab ids and kit ids are unique across a test, however often the mock is reset.
_ids = itertools.count(9000)


def register_kits(partner, *, reject_emails=(), message="phone_number is not reachable") -> None:
    """Accept every registration (new ids and kit ids) except those of `reject_emails` (422)."""

    def callback(request):
        body = json.loads(request.body)
        if body["user"]["email"] in reject_emails:
            return 422, {}, json.dumps({"error": message})
        n = next(_ids)
        return 201, {}, json.dumps({"id": n, "state": "registred", "kit_id": f"BULK{n}", "user_id": 70})

    partner.mock.add_callback(
        responses.POST, re.compile(re.escape(f"{partner.api}/v1/kits/") + r"\d+/registration"), callback=callback
    )
