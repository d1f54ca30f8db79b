"""The bench wipes and refills its database: make sure it is a bench database, and create it.

Checked before Django opens a connection, from the settings alone (DATABASE_URL).
"""

from __future__ import annotations

from django.core.management.base import CommandError

MARKER = "bench"


def database_label(settings_dict: dict) -> str:
    """`vendor:name` for messages, never with the password."""
    engine = settings_dict["ENGINE"].rsplit(".", 1)[-1]
    return f"{engine}:{settings_dict.get('NAME') or '?'}"


def check_wipe_allowed(settings_dict: dict, *, forced: bool) -> None:
    """Refuse a database whose name does not say it is for the bench, unless `forced`."""
    name = str(settings_dict.get("NAME") or "")
    if forced or MARKER in name.lower():
        return
    raise CommandError(
        f"refusing to run on {database_label(settings_dict)!r}: the bench deletes and regenerates the "
        f"portal's tables, and this database's name does not contain {MARKER!r}.\n"
        "Point DATABASE_URL at a bench database, e.g.\n"
        "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench make bench\n"
        "or pass --i-know-this-wipes-data if this database holds nothing you want to keep."
    )


def ensure_database(settings_dict: dict) -> bool:
    """Create the PostgreSQL database if it does not exist (True when created).
    SQLite creates its file on first use; other engines must exist already."""
    if settings_dict["ENGINE"] != "django.db.backends.postgresql":
        return False
    import psycopg
    from psycopg import sql

    name = settings_dict["NAME"]
    params = {
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
    }
    params = {key: value for key, value in params.items() if value is not None}
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **params) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg.Error as exc:
        raise CommandError(f"could not reach or create {database_label(settings_dict)!r}: {exc}") from exc
