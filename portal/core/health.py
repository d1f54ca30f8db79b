"""Liveness of the parts the portal cannot work without: the database and the broker."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from django.conf import settings
from django.db import connection
from kombu import Connection

logger = logging.getLogger(__name__)


def check_database() -> str | None:
    """Return None when the database answers, else a short reason (no secrets)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        logger.warning("health: database check failed: %s", type(exc).__name__)
        return f"database unreachable ({type(exc).__name__})"
    return None


def check_broker() -> str | None:
    """Return None when the Celery broker accepts a connection, else a short reason."""
    url = settings.CELERY_BROKER_URL
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if url.startswith("filesystem://"):
        # The file transport has no server: it is up when its folders are writable.
        for key in ("data_folder_in", "data_folder_out", "control_folder"):
            folder = Path(options[key])
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                return f"broker folder unusable ({type(exc).__name__})"
            if not os.access(folder, os.W_OK):
                return "broker folder not writable"
        return None
    timeout = settings.CELERY_BROKER_CONNECTION_TIMEOUT
    try:
        with Connection(url, transport_options=options, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # kombu raises many kinds; all mean "down"
        logger.warning("health: broker check failed: %s", type(exc).__name__)
        return f"broker unreachable ({type(exc).__name__})"
    return None
