"""The sandbox's own store: one SQLite connection behind a lock (threads share it).

It holds no patient data: a registration keeps a hash of the email only, to give
the same person the same `user_id`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    amount TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email_sha256 TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS registrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    invoice_id INTEGER NOT NULL REFERENCES orders (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    kit_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


class Store:
    """Orders and kit registrations (a registration is also its result)."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.executescript(SCHEMA)

    def create_order(self, *, amount: str, now: float) -> dict:
        with self._lock:
            cursor = self._db.execute("INSERT INTO orders (amount, created_at) VALUES (?, ?)", (amount, now))
            return {"id": cursor.lastrowid, "amount": amount, "created_at": now}

    def get_order(self, order_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        return dict(row) if row else None

    def create_registration(self, *, invoice_id: int, email: str, kit_id: str, now: float) -> dict | None:
        """None when the invoice (order) does not exist."""
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not self._db.execute("SELECT 1 FROM orders WHERE id = ?", (invoice_id,)).fetchone():
                    self._db.execute("ROLLBACK")
                    return None
                self._db.execute("INSERT OR IGNORE INTO users (email_sha256) VALUES (?)", (digest,))
                user_id = self._db.execute("SELECT id FROM users WHERE email_sha256 = ?", (digest,)).fetchone()[0]
                cursor = self._db.execute(
                    "INSERT INTO registrations (invoice_id, user_id, kit_id, created_at) VALUES (?, ?, ?, ?)",
                    (invoice_id, user_id, kit_id, now),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return {"id": cursor.lastrowid, "invoice_id": invoice_id, "user_id": user_id, "kit_id": kit_id}

    def get_registration(self, registration_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM registrations WHERE id = ?", (registration_id,)).fetchone()
        return dict(row) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
