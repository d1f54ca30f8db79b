"""django-auditlog's middleware, with two changes for the portal:

- the client address is the one the login lockout uses
  (`portal.accounts.lockout.client_ip_address`: only the part of
  X-Forwarded-For our own proxies wrote), not the first, client-supplied entry;
- it marks the request as a web request, so a change made in it is never given
  the SYSTEM actor (see `portal.audit.actors`).
"""

from __future__ import annotations

from auditlog.middleware import AuditlogMiddleware

from portal.accounts.lockout import client_ip_address
from portal.audit.actors import in_web_request


class AuditActorMiddleware(AuditlogMiddleware):
    @staticmethod
    def _get_remote_addr(request):
        return client_ip_address(request)

    @staticmethod
    def _get_remote_port(request):
        return None

    def __call__(self, request):
        token = in_web_request.set(True)
        try:
            return super().__call__(request)
        finally:
            in_web_request.reset(token)
