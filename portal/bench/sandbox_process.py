"""The sandbox in a process of its own, its clock fixed (`manage.py bench --sandbox-process`).

    python -m portal.bench.sandbox_process --db FILE --latency-ms 50 --now 1733300000.0

Prints the port it listens on (127.0.0.1, chosen by the system), then serves until
terminated. Unlike `python -m portal.sandbox`, its clock stands still, so the states
it answers are the ones the bench planned. Needs no Django.
"""

from __future__ import annotations

import argparse
import signal
import sys

from portal.sandbox.options import SandboxOptions
from portal.sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.bench.sandbox_process")
    parser.add_argument("--db", required=True)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--now", type=float, required=True)
    args = parser.parse_args(argv)
    options = SandboxOptions(host="127.0.0.1", port=0, db_path=args.db, latency_ms=args.latency_ms, quiet=True, seed=1)
    server = SandboxServer(options, clock=lambda: args.now)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.port, flush=True)
    try:
        server.serve_forever()
    finally:
        server.httpd.server_close()
        server.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
