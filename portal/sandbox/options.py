"""The sandbox's options, from the environment (SANDBOX_*) and the command line."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

DEFAULT_DB = Path(__file__).resolve().parents[2] / "var" / "sandbox.sqlite3"


@dataclass
class SandboxOptions:
    """Everything the sandbox can be told. Mutable on purpose: a test may switch a
    fault on or off while the server runs (each request reads the current values)."""

    host: str = "127.0.0.1"
    port: int = 8001
    db_path: str = str(DEFAULT_DB)
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"  # noqa: S105 (the sandbox's well-known local credential)
    # Signs the sandbox's JWTs; it protects nothing real.
    signing_key: str = "portal-sandbox-signing-key-local-use-only"
    token_lifetime: float = 3600
    order_ship_after: float = 60
    result_ready_after: float = 90
    latency_ms: int = 0
    error_rate: float = 0.0
    error_codes: tuple[int, ...] = (500, 503, 429)
    malformed_rate: float = 0.0
    seed: int | None = None
    allow_external: bool = False
    quiet: bool = field(default=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxOptions:
        """Defaults overridden by SANDBOX_<OPTION> variables (SANDBOX_DB for `db_path`)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = "SANDBOX_DB" if f.name == "db_path" else f"SANDBOX_{f.name.upper()}"
            if environ.get(name, "") != "":
                values[f.name] = _convert(f.name, environ[name])
        return cls(**values)

    @classmethod
    def from_args(cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None):
        base = cls.from_env(environ)
        parser = argparse.ArgumentParser(
            prog="python -m portal.sandbox", description="Stand-in for the lab partner's API (local use only)."
        )
        parser.add_argument("--host", default=base.host)
        parser.add_argument("--port", type=int, default=base.port)
        parser.add_argument("--db", dest="db_path", default=base.db_path, help='SQLite file, or ":memory:"')
        parser.add_argument("--client-id", default=base.client_id)
        parser.add_argument("--client-secret", default=base.client_secret)
        parser.add_argument("--token-lifetime", type=float, default=base.token_lifetime)
        parser.add_argument("--order-ship-after", type=float, default=base.order_ship_after)
        parser.add_argument("--result-ready-after", type=float, default=base.result_ready_after)
        parser.add_argument("--latency-ms", type=int, default=base.latency_ms)
        parser.add_argument("--error-rate", type=float, default=base.error_rate)
        parser.add_argument("--error-codes", type=lambda v: _convert("error_codes", v), default=base.error_codes)
        parser.add_argument("--malformed-rate", type=float, default=base.malformed_rate)
        parser.add_argument("--seed", type=int, default=base.seed)
        parser.add_argument(
            "--allow-external",
            action="store_true",
            default=base.allow_external,
            help="listen on a non-loopback address (never do this where real patient data lives)",
        )
        parser.add_argument("--quiet", action="store_true", default=base.quiet, help="no access log")
        return cls(**vars(parser.parse_args(argv)))


def _convert(name: str, raw: str):
    raw = raw.strip()
    if name == "error_codes":
        codes = tuple(int(code) for code in raw.split(",") if code.strip())
        if not codes or any(not 400 <= code <= 599 for code in codes):
            raise ValueError("SANDBOX_ERROR_CODES must be a comma-separated list of 4xx/5xx codes")
        return codes
    if name in ("port", "latency_ms", "seed"):
        return int(raw)
    if name in ("token_lifetime", "order_ship_after", "result_ready_after", "error_rate", "malformed_rate"):
        return float(raw)
    if name in ("allow_external", "quiet"):
        return raw.lower() in ("1", "true", "yes", "on")
    return raw
