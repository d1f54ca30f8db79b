"""A stand-in for the lab partner's API, for development and tests only.

It speaks the contract of ../shared/upstream/everlywell-enterprise-api.md, awkward
parts included: `"state": "registred"`, HS256 JWTs that expire, and, on demand,
slow answers, 429/500/503 and the reference's trailing-comma body. It is plain
Python (no Django, no portal database) with a store of its own, and runs only
when started on purpose:

    python -m portal.sandbox --host 127.0.0.1 --port 8001      (make run does this)

It refuses to listen on a non-loopback address unless `--allow-external` is given.

Endpoints (same paths, methods, status codes and JSON as the reference)
    GET  /api/v1/token                       Basic auth -> 200 {"token": <JWT>}; 401 otherwise
    POST /aapi/v2/orders/                    {"amount": > 0} -> 201 {"id", "amount"}; 422 otherwise
    GET  /aapi/v2/orders/<id>                200 {"id", "state"}; 404 unknown
    POST /aapi/v1/kits/<invoice_id>/registration
                                             201 {"id", "state": "registred", "kit_id", "user_id"};
                                             404 unknown invoice; 422 {"error": ...} for bad data
    GET  /aapi/v1/results/<id>               200 {"id", "state"}; 404 unknown. A result's id is
                                             its kit registration's id (NOTES.md point 15).
    GET  /__sandbox/stats                    {"token_requests": n, "requests": n, "faults": n}
Every /aapi call needs `Authorization: Bearer <token>` (401 if missing, wrong or expired).

State schedule (seconds since the record was created, by the sandbox's clock)
    Orders:   "processing"            until ORDER_SHIP_AFTER (60)
              "shipped"               from then on
    Results:  "awaiting_sample"       until RESULT_READY_AFTER / 2 (45)
              "processing"            until RESULT_READY_AFTER (90)
              "ready"                 from then on
    Every 5th registration (id divisible by 5) passes through a state the portal
    does not know: "processing" until 3/4 of RESULT_READY_AFTER, then
    "quality_review" until RESULT_READY_AFTER, then "ready".

Options (command-line flags override the environment; faults are off by default)
    SANDBOX_HOST / --host                    127.0.0.1
    SANDBOX_PORT / --port                    8001
    SANDBOX_DB / --db                        var/sandbox.sqlite3 (":memory:" keeps nothing)
    SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET sandbox-client / sandbox-secret
    SANDBOX_TOKEN_LIFETIME                   3600 seconds (the JWT's exp)
    SANDBOX_ORDER_SHIP_AFTER                 60 seconds
    SANDBOX_RESULT_READY_AFTER               90 seconds
    SANDBOX_LATENCY_MS                       0: added to every partner call
    SANDBOX_ERROR_RATE                       0.0: share of partner calls answered with an error
    SANDBOX_ERROR_CODES                      "500,503,429" (429 and 503 carry Retry-After: 1)
    SANDBOX_MALFORMED_RATE                   0.0: share of 200 GET answers sent with a trailing comma
    SANDBOX_SEED                             seed of the fault and kit-id generator (random if unset)
An injected error is answered before the request is applied, so a retried POST
never creates a duplicate here.
"""
