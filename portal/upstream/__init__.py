"""The one client for the lab partner's API (Everlywell's Enterprise API).

Only this package knows the partner's URLs, JSON shapes and HTTP status codes;
everything past it speaks in the typed values of `types` and the errors of
`errors`. Use it through `client.get_client()`.
"""
