"""`python -m portal.sandbox`: run the stand-in partner until interrupted."""

from __future__ import annotations

import logging
import sys

from portal.sandbox.options import SandboxOptions
from portal.sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox %(message)s")
    options = SandboxOptions.from_args(argv)
    try:
        server = SandboxServer(options)
    except (ValueError, OSError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    faults = (
        f"latency {options.latency_ms} ms, errors {options.error_rate:.0%} of {list(options.error_codes)}, "
        f"malformed {options.malformed_rate:.0%}"
    )
    print(
        f"Sandbox partner on {server.base_url}: API {server.base_url}/aapi, auth {server.base_url}/api, "
        f"client id {options.client_id!r}, store {options.db_path}; faults: {faults}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
