"""`manage.py bench`: make the bench data, measure, print a table, write JSON.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench make bench
    make bench ARGS="--rows 1000000"
    make bench ARGS="--only pages,admin --repeat 50 --keep"

The database is wiped and refilled: it must be named "...bench..." (or pass
--i-know-this-wipes-data). See portal/bench/ for what each part measures.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

from celery.app.task import Task
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import override_settings

from portal.bench import data, goals, report
from portal.bench.safety import check_wipe_allowed, database_label, ensure_database

PARTS = ("polling", "pages", "export", "admin", "registration")
DEFAULT_ROWS = 100_000
MAX_DUE = 10_000


def _load_average() -> list[float] | None:
    """The machine's 1, 5, 15-minute load: other work on it shows in the figures."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


@contextmanager
def _console_logs_to(path: Path):
    """Point the console log handlers at `path` for the run, then back."""
    handlers = {
        h
        for logger in [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
        for h in getattr(logger, "handlers", [])
        if type(h) is logging.StreamHandler
    }
    with open(path, "a", encoding="utf-8") as stream:
        previous = {h: h.setStream(stream) for h in handlers}
        try:
            yield
        finally:
            for handler, old in previous.items():
                handler.setStream(old)


class Command(BaseCommand):
    help = "Generate bench data and measure polling throughput and staff-page latency (wipes the database)."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="results to generate (default 100000)")
        parser.add_argument(
            "--only",
            default=",".join(PARTS),
            help=f"comma-separated parts to run: {', '.join(PARTS)} (default: all)",
        )
        parser.add_argument("--repeat", type=int, default=30, help="latency samples per page (default 30)")
        parser.add_argument(
            "--page-budget",
            type=float,
            default=60.0,
            help="seconds of sampling per page before stopping early (at least 5 samples; default 60)",
        )
        parser.add_argument("--keep", action="store_true", help="reuse the bench data if its row counts match")
        parser.add_argument(
            "--due",
            type=int,
            default=None,
            help=f"due results to poll (default: rows/10, at most {MAX_DUE:,}); memory is also measured at a tenth",
        )
        parser.add_argument(
            "--trace-memory",
            action="store_true",
            help="also poll under tracemalloc at both sizes (slow; RSS is always measured)",
        )
        parser.add_argument(
            "--sandbox-process",
            action="store_true",
            help="run the polling sandbox in a process of its own (default: a thread of this process)",
        )
        parser.add_argument("--seed", type=int, default=data.DEFAULT_SEED, help="the data's random seed")
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "var" / "bench"), help="JSON directory")
        parser.add_argument(
            "--i-know-this-wipes-data",
            action="store_true",
            dest="force",
            help="run on a database whose name does not contain 'bench' (its portal tables are emptied)",
        )

    def log(self, message: str = "") -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def handle(self, *args, **options):
        parts = [p.strip() for p in options["only"].split(",") if p.strip()]
        unknown = sorted(set(parts) - set(PARTS))
        if unknown:
            raise CommandError(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
        rows, repeat = options["rows"], options["repeat"]
        if rows < 100 or repeat < 1:
            raise CommandError("--rows must be at least 100 and --repeat at least 1")
        settings_dict = connection.settings_dict
        check_wipe_allowed(settings_dict, forced=options["force"])
        if settings.DEBUG:
            # Measured as deployed: no query log, no debug templates.
            self.log("DEBUG is on in this environment: turned off for the run (make bench sets DJANGO_DEBUG=False).")
            settings.DEBUG = False
        if ensure_database(settings_dict):
            self.log(f"Created database {settings_dict['NAME']!r}.")

        enqueued: Counter = Counter()
        # whitenoise: the bench serves no static files, so it needs no `collectstatic`.
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

        def no_publish(task, *args, **kwargs):
            # Nothing the bench does may reach a real broker (a worker there would act on
            # bench rows); sending emails is another worker's job and is not measured.
            enqueued[task.name] += 1

        output = Path(options["output"])
        output.mkdir(parents=True, exist_ok=True)
        log_path = output / f"{time.strftime('%Y%m%d-%H%M%S')}.log"
        with ExitStack() as stack:
            # The portal's log lines are still written (as in production), to a file.
            stack.enter_context(_console_logs_to(log_path))
            stack.enter_context(mock.patch.object(Task, "apply_async", no_publish))
            stack.enter_context(
                override_settings(
                    ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"],
                    # No `collectstatic` needed: plain static URLs (a dict lookup less per asset).
                    STORAGES={
                        **settings.STORAGES,
                        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
                    },
                    # The bench's token and cache entries never mix with another portal's.
                    CACHES={
                        alias: {**conf, "KEY_PREFIX": f"portal-bench{conf.get('KEY_PREFIX', '')}"}
                        for alias, conf in settings.CACHES.items()
                    },
                )
            )
            result = self.run(parts=parts, rows=rows, repeat=repeat, options=options)
        result["tasks_enqueued_not_sent"] = dict(enqueued)
        path = report.write_json(result, output)
        self.log(f"\nWrote {path} (the portal's log lines: {log_path})")

    # --- The run -----------------------------------------------------------------

    def run(self, *, parts: list[str], rows: int, repeat: int, options: dict) -> dict:
        started = time.perf_counter()
        self.log(f"Preparing {database_label(connection.settings_dict)} ...")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        staff, admin = self.users()
        Session.objects.all().delete()  # the bench's own sign-ins from earlier runs
        data.wipe_activity()

        counts = data.row_counts() if options["keep"] else {}
        expected = data.expected_counts(rows)
        generation: dict
        if options["keep"] and all(counts.get(table) == n for table, n in expected.items()):
            self.log(f"Reusing the bench data ({rows:,} results; --keep).")
            generation = {"reused": True}
        else:
            if options["keep"]:
                self.log("The bench data do not match --rows: generating them again.")
            self.log(f"Generating {rows:,} results (seed {options['seed']}) ...")
            generation = data.generate(rows=rows, seed=options["seed"], staff_user_id=staff.pk, log=self.log)
            counts = data.row_counts()

        out: dict = {
            "bench": "portal",
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "commit": report.git_commit(),
            "machine": report.machine(),
            "database": report.database(),
            "cache": report.cache_backend(),
            "settings": {
                "EVERLYWELL_CONCURRENCY": settings.EVERLYWELL_CONCURRENCY,
                "POLL_BATCH_SIZE": settings.POLL_BATCH_SIZE,
                "CONN_MAX_AGE": connection.settings_dict.get("CONN_MAX_AGE"),
                "DEBUG": settings.DEBUG,
            },
            "load_average_at_start": _load_average(),
            "rows": rows,
            "row_counts": counts,
            "generation": generation,
            "parts": parts,
            "repeat": repeat,
        }
        self.print_header(out)

        if "polling" in parts:
            from portal.bench.polling import run_polling

            due = options["due"] or min(MAX_DUE, max(10, rows // 10))
            self.log(f"\nPolling: {due:,} due results ...")
            out["polling"] = run_polling(
                due=due,
                log=self.log,
                trace_memory=options["trace_memory"],
                sandbox_process=options["sandbox_process"],
            )
            self.print_polling(out["polling"])

        if {"pages", "export", "admin"} & set(parts):
            out.update(
                self.run_pages(
                    parts=parts, rows=rows, repeat=repeat, staff=staff, admin=admin, budget=options["page_budget"]
                )
            )

        if "registration" in parts:
            from portal.bench.pages import signed_in_client
            from portal.bench.registration import run_registration

            self.log("\nKit registration ...")
            out["registration"] = run_registration(client=signed_in_client(staff), repeat=repeat)
            self.print_registration(out["registration"])

        out["load_average_at_end"] = _load_average()
        out["goals"] = goals.evaluate(out, previous=goals.previous_run(Path(options["output"]), rows=rows))
        self.print_goals(out["goals"])
        out["seconds"] = round(time.perf_counter() - started, 1)
        return out

    def users(self):
        """The bench's clinic staff member and admin (created once, kept)."""
        from django.contrib.auth import get_user_model

        from portal.accounts.roles import ADMINS, CLINIC_STAFF
        from portal.accounts.services import user_create_in_role

        User = get_user_model()
        made = []
        for username, role in (("bench-staff", CLINIC_STAFF), ("bench-admin", ADMINS)):
            user = User.objects.filter(username=username).first()
            if user is None:
                user, _ = user_create_in_role(username=username, role=role)
            made.append(user)
        return made

    def run_pages(self, *, parts, rows, repeat, staff, admin, budget) -> dict:
        from portal.bench import pages

        kit_id = pages.sample_kit_id()
        clients = {"staff": pages.signed_in_client(staff), "admin": pages.signed_in_client(admin)}
        out: dict = {"search": {"kit_id": kit_id, "last_name": data.SEARCH_LAST_NAME}}
        catalogue = []
        if "pages" in parts:
            catalogue += pages.staff_pages(kit_id=kit_id, rows=rows)
        if "admin" in parts:
            catalogue += pages.admin_pages(kit_id=kit_id, rows=rows)
        if catalogue:
            self.log(f"\nPages: {len(catalogue)} pages x {repeat} requests ...")
            out["pages"] = {p.key: pages.measure(clients[p.who], p, repeat, budget=budget) for p in catalogue}
            self.print_pages(out["pages"])
        if "pages" in parts and "admin" in parts:
            out["side_by_side"] = self.side_by_side(out["pages"], pages.SIDE_BY_SIDE)
        if "export" in parts:
            export_list, info = pages.export_pages()
            self.log(f"\nCSV export ({max(3, repeat // 3)} runs each) ...")
            out["export"] = {
                p.key: {**pages.measure_export(clients["staff"], p, max(3, repeat // 3), budget=budget), **info[p.key]}
                for p in export_list
            }
            self.print_export(out["export"])
        return out

    # --- Printing ----------------------------------------------------------------

    def print_header(self, out: dict) -> None:
        m, db = out["machine"], out["database"]
        self.log("")
        self.log(f"Machine:  {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; Python {m['python']}, "
                 f"Django {m['django']}")  # fmt: skip
        self.log(f"Database: {db['version']} ({db['vendor']}, database {db['name']!r}); cache: {out['cache']}")
        if db["vendor"] != "postgresql":
            self.log("          (not PostgreSQL: a quick look only; the goals are for PostgreSQL)")
        gen = out["generation"]
        how = "reused (--keep)" if gen.get("reused") else f"generated in {gen['seconds']} s"
        self.log(f"Rows:     {out['rows']:,} results, {how}")
        load = out.get("load_average_at_start")
        if load:
            busy = load[0] > (out["machine"]["cores"] or 1)
            self.log(
                f"Load:     {load} (1, 5, 15 min) at the start"
                + ("  <- the machine is busy: expect slower, noisier figures" if busy else "")
            )
        self.log(report.table(["table", "rows"], [[t, f"{n:,}"] for t, n in out["row_counts"].items()]))

    def print_polling(self, p: dict) -> None:
        runs = p["runs"]
        rows = [
            [
                f"{r['due']:,} due" + (" (tracemalloc)" if "traced" in name else ""),
                r["polled"],
                r["seconds"],
                r["results_per_s"],
                round(r["results_per_s"] / p["limit_per_s"], 2) if r["results_per_s"] else "",
                r["rss_peak_delta_mb"],
                r["tracemalloc_peak_mb"] if r["tracemalloc_peak_mb"] is not None else "",
                r["cpu_ms_per_result"],
                r["main_thread_cpu_ms_per_result"],
                r["db_sessions_opened"] if r["db_sessions_opened"] is not None else "",
            ]
            for name, r in runs.items()
        ]
        self.log(
            report.table(
                [
                    "run",
                    "polled",
                    "s",
                    "results/s",
                    "ratio",
                    "RSS peak +MB",
                    "traced peak MB",
                    "CPU ms/result",
                    "main thread CPU ms/result",
                    "DB conns opened",
                ],
                rows,
                title=(
                    f"Polling: C={p['concurrency']} calls in flight, L={p['latency_ms']} ms, limit C/L = "
                    f"{p['limit_per_s']}/s; batch {p['batch_size']}; token cache: {p['cache']}; {p['sandbox']}"
                ),
            )
        )
        self.log(
            f"Peak memory (RSS above the start): {p['memory_small_mb']} MB at {runs['small']['due']:,} due, "
            f"{p['memory_large_mb']} MB at {runs['large']['due']:,} due; token requests: {p['token_requests']}"
        )

    def print_pages(self, results: dict) -> None:
        rows = []
        for r in results.values():
            if r.get("available"):
                rows.append([r["label"], r["median_ms"], r["p95_ms"], r["queries"], r["cpu_median_ms"],
                             r.get("note", "")])  # fmt: skip
            else:
                rows.append([r["label"], "-", "-", "-", "-", f"not available: {r['reason']}"])
        self.log(report.table(["page", "median ms", "p95 ms", "queries", "CPU ms", "note"], rows, title="Pages"))

    def side_by_side(self, results: dict, pairs) -> dict:
        out, rows = {}, []
        for label, portal_key, admin_key in pairs:
            a, b = results.get(portal_key, {}), results.get(admin_key, {})
            entry = {
                "portal": {k: a.get(k) for k in ("median_ms", "p95_ms", "queries")} if a.get("available") else None,
                "admin": {k: b.get(k) for k in ("median_ms", "p95_ms", "queries")} if b.get("available") else None,
            }
            out[label] = entry

            def cell(e, key):
                return e[key] if e else "n/a"

            rows.append([
                label,
                cell(entry["portal"], "median_ms"), cell(entry["portal"], "p95_ms"), cell(entry["portal"], "queries"),
                cell(entry["admin"], "median_ms"), cell(entry["admin"], "p95_ms"), cell(entry["admin"], "queries"),
            ])  # fmt: skip
        self.log(
            report.table(
                ["results list", "portal median", "portal p95", "q", "admin median", "admin p95", "q"],
                rows,
                title="Side by side: the results list, portal page vs Django admin changelist (ms)",
            )
        )
        return out

    def print_export(self, results: dict) -> None:
        rows = []
        for r in results.values():
            if r.get("available"):
                rows.append([r["label"], r["median_ms"], r["p95_ms"], r["queries"], f"{r['rows_per_s']:,}",
                             r["tracemalloc_peak_mb"]])  # fmt: skip
            else:
                rows.append([r["label"], "-", "-", "-", "-", f"not available: {r['reason']}"])
        self.log(
            report.table(["export", "median ms", "p95 ms", "queries", "rows/s", "traced peak MB"], rows, title="Export")
        )

    def print_goals(self, results: list[dict]) -> None:
        if not results:
            return
        rows = [[g["goal"], g["measured"], g["verdict"]] for g in results]
        self.log(report.table(["goal", "measured", "verdict"], rows, title="Goals"))

    def print_registration(self, r: dict) -> None:
        if not r.get("cases"):
            self.log(f"Kit registration: not available: {r.get('reason')}")
            return
        rows = []
        for case, c in r["cases"].items():
            if c.get("available"):
                rows.append([case.replace("_", " "), c["per_s"], c["median_ms"], c["p95_ms"], c["queries"]])
            else:
                rows.append([case.replace("_", " "), "-", "-", "-", f"not available: {c['reason']}"])
        self.log(
            report.table(
                ["kit registration", "per s", "median ms", "p95 ms", "queries"],
                rows,
                title="Kit registration (upstream mocked, zero latency; one staff member submitting in a loop)",
            )
        )
