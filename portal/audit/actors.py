"""Who an audit entry names.

- A signed-in person's web request: that person (django-auditlog's middleware,
  extended in `portal.audit.middleware`).
- A Celery task: the named SYSTEM actor, the user `system` (inactive, no usable
  password, created by a data migration), set around every task by the
  `task_prerun` / `task_postrun` signals, so the tasks themselves stay thin.
- Anything else outside a web request (management commands such as
  `poll_results`, a shell): the SYSTEM actor too, by a fallback on the log
  entry itself. Only a change made in an anonymous web request (there is none
  today: every page that writes needs a signed-in person) has no actor.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

from auditlog.context import auditlog_value, set_actor
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import DatabaseError
from django.db.models.signals import pre_save

logger = logging.getLogger(__name__)

SYSTEM_USERNAME = "system"

# Open actor contexts of running tasks, by task id: (the context, the context
# that was active before, restored after the task, e.g. an eager task in a request).
_task_contexts: dict[str, tuple[ExitStack, object]] = {}


def system_user():
    """The SYSTEM actor. Created by the audit app's data migration; recreated here if
    a test database was flushed. It can never sign in."""
    user, _ = get_user_model().objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"is_active": False, "password": make_password(None), "first_name": "System"},
    )
    return user


def task_actor_start(task_id=None, **kwargs) -> None:
    """`task_prerun`: the task's changes are the SYSTEM actor's."""
    try:
        actor = system_user()
    except DatabaseError as exc:
        # The task will meet the same database; its own error is the one to see.
        logger.warning("audit: no system actor for task %s (%s)", task_id, type(exc).__name__)
        return
    previous = auditlog_value.get(None)
    stack = ExitStack()
    stack.enter_context(set_actor(actor))
    _task_contexts[task_id] = (stack, previous)


def task_actor_end(task_id=None, **kwargs) -> None:
    """`task_postrun`: close the task's actor context and restore the one before it."""
    entry = _task_contexts.pop(task_id, None)
    if entry is None:
        return
    stack, previous = entry
    stack.close()
    if previous is not None:
        auditlog_value.set(previous)


def auditlog_context_is_live() -> bool:
    """True inside a web request (auditlog's middleware) or a `set_actor` block.

    auditlog leaves its context variable set after such a block ends and only
    disconnects the block's `pre_save` receiver, so that receiver is what tells a
    live context from a stale one."""
    context = auditlog_value.get(None)
    if not context:
        return False
    duid = context.get("signal_duid")
    return any(lookup_key[0] == duid for lookup_key, *_ in pre_save.receivers)


def log_entry_default_actor(sender, instance, **kwargs) -> None:
    """`pre_save` of auditlog's LogEntry: a change made outside any web request and
    any actor context (a management command, a shell) is the SYSTEM actor's."""
    if instance.actor_id is None and not auditlog_context_is_live():
        actor = system_user()
        instance.actor = actor
        instance.actor_email = actor.email or None


def connect_signals() -> None:
    from auditlog.models import LogEntry
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(task_actor_start, dispatch_uid="portal.audit.task_actor_start", weak=False)
    task_postrun.connect(task_actor_end, dispatch_uid="portal.audit.task_actor_end", weak=False)
    pre_save.connect(log_entry_default_actor, sender=LogEntry, dispatch_uid="portal.audit.log_entry_default_actor")
