"""Recording reads of patient data (HIPAA 164.312(b), ASVS V16)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.db.models import Model, QuerySet

from portal.accounts.lockout import client_ip_address
from portal.audit.models import PhiAccess

# Ids per row: a large export is written as several rows ("part 2 of 7").
IDS_PER_ROW = 5000
# Query parameters whose presence turns a list into a search.
SEARCH_PARAMETERS = frozenset({"q"})
# Only parameter *names* that look like our filters' are kept (a hand-made URL
# could carry anything); their values never are.
_FILTER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_NOT_FILTERS = frozenset({"page", "o", "p", "_changelist_filters", "_popup", "_to_field"})


def phi_access_record(*, request, action: str, model: type[Model], ids) -> list[PhiAccess]:
    """Record that the person of `request` was shown (or exported) the `model`
    records whose ids are `ids`.

    `ids` may be ids, model instances (e.g. a page's `object_list`, which is then
    evaluated once and reused by the template; a prefetched relation) or an
    unsliced, unloaded queryset (an export: its ids are read with one extra query,
    before any row is sent). A "list" with
    a search term (`?q=`) is recorded as a "search". Call it before rendering: if
    the audit row cannot be written, the page is not shown.
    """
    action = PhiAccess.Action(action)
    if action == PhiAccess.Action.LIST and any(request.GET.get(name, "").strip() for name in SEARCH_PARAMETERS):
        action = PhiAccess.Action.SEARCH
    all_ids = list(_ids(ids))
    match = getattr(request, "resolver_match", None)
    common = {
        "actor": request.user,
        "action": action,
        "model": model._meta.label_lower,
        "object_count": len(all_ids),
        "url_name": (match.view_name if match else "")[:200],
        "filters": _filter_names(request),
        "client_ip": client_ip_address(request),
    }
    chunks = [all_ids[i : i + IDS_PER_ROW] for i in range(0, len(all_ids), IDS_PER_ROW)] or [[]]
    rows = [
        PhiAccess(
            **common,
            object_ids=chunk,
            object_ids_text="".join(f",{pk}" for pk in chunk) + "," if chunk else "",
            part=number,
            parts=len(chunks),
        )
        for number, chunk in enumerate(chunks, start=1)
    ]
    return PhiAccess.objects.bulk_create(rows)


def _ids(ids) -> Iterator[int]:
    if isinstance(ids, QuerySet) and not ids.query.is_sliced and ids._result_cache is None:
        # Not loaded yet (an export): read the ids only, in one streamed query.
        yield from ids.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=IDS_PER_ROW)
        return
    for item in ids:
        yield int(item.pk if isinstance(item, Model) else item)


def _filter_names(request) -> list[str]:
    names = {
        name
        for name, values in request.GET.lists()
        if name not in _NOT_FILTERS and _FILTER_NAME.match(name) and any(v.strip() for v in values)
    }
    return sorted(names)[:20]
