"""django-auditlog's middleware, with two changes for the portal:

- the client address is the one the login lockout uses
  (`portal.accounts.lockout.client_ip_address`: only the part of
  X-Forwarded-For our own proxies wrote), not the first, client-supplied entry;
- no client-supplied port is recorded.
"""

from __future__ import annotations

from auditlog.middleware import AuditlogMiddleware

from portal.accounts.lockout import client_ip_address


class AuditActorMiddleware(AuditlogMiddleware):
    @staticmethod
    def _get_remote_addr(request):
        return client_ip_address(request)

    @staticmethod
    def _get_remote_port(request):
        return None
