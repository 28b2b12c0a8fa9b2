"""Benchmark: alerts evaluated and delivered for a 5k-meter park where every condition flips.

What is measured: a detection run's surpluses for 5,000 meters (100 tenants of 50 meters)
appear, then disappear: each flip is one evaluation of 5,000 observations
(``AlertRepository.apply``: lifecycle, history, rendered notifications in the outbox, one
transaction), then the dispatcher (``service.alerts.dispatch``, 16 lanes, in this process)
delivers every notification: each tenant's signed webhook, and one tenant in ten's e-mail.
The receivers run in a separate process on loopback: an HTTP server that verifies every
signature with the ``standardwebhooks`` package and keeps each ``webhook-id`` once (as
docs/alerts.md asks of integrators), and an SMTP server (aiosmtpd).

Reported: evaluations/s; webhook notifications/s from the first to the last received; the
p50/p99 time from the end of the evaluation (its commit) to each webhook's arrival; e-mails/s;
lost (an outbox id never received) and duplicated (received more than once: by webhook-id, or in
a batch by each notification's own id). With `--batch N` every tenant's webhook asks for batches
(docs/alerts.md): `webhook_requests` says how many POSTs carried them.

    python -m bench.alerts            # 5,000 meters, two flips, SQLite
    python -m bench.alerts --quick    # 1,000 meters, two flips (well under a minute)
    python -m bench.alerts --postgres # the operational database on a local PostgreSQL
    python -m bench.alerts --batch 100  # tenants' webhooks ask for batches of up to 100

The last line printed is one JSON object with at least ``notifications_per_s``, ``p99_ms``,
``lost`` and ``duplicated``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + "YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC0zMmJ5dGVz"  # base64 of 32 bytes
TENANTS = 100
EMAIL_EVERY = 10  # one tenant in ten also has an e-mail contact


def receiver_main(out_path: Path, ports_path: Path) -> int:
    """The receivers' process: webhook HTTP server and SMTP server until SIGTERM; then it
    writes what arrived (id -> first arrival time, duplicates, bad signatures, e-mails)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aiosmtpd.controller import Controller
    from standardwebhooks import Webhook, WebhookVerificationError

    verifier = Webhook(SECRET)
    lock = threading.Lock()
    arrived: dict[str, float] = {}
    counts = {"duplicated": 0, "bad_signatures": 0, "emails": 0, "requests": 0}
    email_times: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the dispatcher reuses its connections

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            at = time.time()
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                verifier.verify(body, headers)
            except WebhookVerificationError:
                with lock:
                    counts["bad_signatures"] += 1
                self._answer(400)
                return
            # each notification once by its own id, as docs/alerts.md asks (a batch carries
            # several, each with its id)
            doc = json.loads(body)
            if doc["type"] == "alert.batch":
                ids = [n["data"]["id"] for n in doc["data"]["notifications"]]
            else:
                ids = [headers["webhook-id"]]
            with lock:
                counts["requests"] += 1
                for wid in ids:
                    if wid in arrived:
                        counts["duplicated"] += 1
                    else:
                        arrived[wid] = at
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Mailbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with lock:
                counts["emails"] += 1
                email_times.append(time.time())
            return "250 OK"

    class Server(ThreadingHTTPServer):
        # the dispatcher opens a connection per lane and endpoint at once: a listen backlog
        # of 5 (the default) resets some of them, which measured the backlog, not delivery
        request_queue_size = 1024

    http = Server(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    from tests.support.ports import free_port

    smtp_port = free_port()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    ports_path.write_text(json.dumps({"http": http.server_address[1], "smtp": smtp_port}))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    http.shutdown()
    smtp.stop()
    with lock:
        out_path.write_text(json.dumps({"arrived": arrived, **counts, "email_times": email_times}))
    return 0


def contacts_yaml(http_port: int, batch: int = 1) -> str:
    lines = ["allow_networks: [127.0.0.0/8]", "tenants:"]
    for t in range(TENANTS):
        chans = [
            f'{{kind: webhook, url: "http://127.0.0.1:{http_port}/hooks/t{t:03d}",'
            f" secrets: [{SECRET}], batch: {batch}}}"
        ]
        if t % EMAIL_EVERY == 0:
            chans.append(f"{{kind: email, address: t{t:03d}@example.com}}")
        lines.append(f"  - {{park: bench, tenant: t{t:03d}, channels: [{', '.join(chans)}]}}")
    lines += [
        "operators:",
        "  - {id: ops, park: bench, channels: [{kind: email, address: ops@example.com,"
        " min_severity: critical}]}",
    ]
    return "\n".join(lines) + "\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 meters")
    parser.add_argument("--meters", type=int, default=None)
    parser.add_argument("--flips", type=int, default=2)
    parser.add_argument("--lanes", type=int, default=16)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="every tenant's webhook asks for batches of up to this many (1: one per request)",
    )
    parser.add_argument("--_receiver", nargs=2, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a._receiver:
        return receiver_main(Path(a._receiver[0]), Path(a._receiver[1]))

    import sqlalchemy as sa

    from service.alerts.channels.smtp import SmtpServer
    from service.alerts.contacts import parse_contacts
    from service.alerts.dispatch import Dispatcher
    from service.alerts.kinds import SURPLUS
    from service.alerts.lifecycle import observe
    from service.alerts.notify import ContactsNotifier
    from service.alerts.repository import AlertRepository
    from service.alerts.routing import ContactChannels
    from service.alerts.texts import SurplusFacts, facts_json
    from service.events import SURPLUS_NEW
    from service.state import Database, upgrade
    from service.state.tables import outbox

    meters = a.meters or (1000 if a.quick else 5000)
    work = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    out_path, ports_path = work / "arrived.json", work / "ports.json"
    receiver = subprocess.Popen(
        [sys.executable, "-m", "bench.alerts", "--_receiver", str(out_path), str(ports_path)],
        cwd=REPO,
    )
    pg = None
    try:
        deadline = time.monotonic() + 30
        while not ports_path.exists() or not ports_path.read_text():
            if time.monotonic() > deadline or receiver.poll() is not None:
                raise RuntimeError("the receivers did not start")
            time.sleep(0.05)
        ports = json.loads(ports_path.read_text())
        if a.postgres:
            from tests.support.postgres import PostgresServer

            pg = PostgresServer().start()
            url = pg.url(pg.create_database())
        else:
            url = f"sqlite:///{work / 'operations.sqlite'}"
        db = Database(url)
        upgrade(db)
        contacts = parse_contacts(contacts_yaml(ports["http"], a.batch))
        repo = AlertRepository(db, notifier=ContactsNotifier(contacts))
        smtp = SmtpServer("127.0.0.1", "parkflow@example.com", port=ports["smtp"], starttls=False)
        channels = ContactChannels(contacts, smtp=smtp)
        dispatcher = Dispatcher(db, channels, lanes=a.lanes)
        stop = threading.Event()
        worker = threading.Thread(target=dispatcher.run, args=(stop, 0.02), daemon=True)
        worker.start()

        def observations(holds: bool) -> list[Any]:
            out = []
            for i in range(meters):
                tenant = f"t{i % TENANTS:03d}"
                subject = f"bench:m{i:05d}:surplus"
                facts = SurplusFacts(
                    kind=SURPLUS_NEW,
                    park="bench",
                    ref="",
                    surplus_id=subject,
                    tenant=tenant,
                    name=f"Tenant {tenant}",
                    meter=f"m{i:05d}",
                    resource="energy.steam",
                    unit="t",
                    per_day=10.0 + i % 7,
                    before_per_day=None,
                    days_present=20,
                    days=28,
                )
                out.append(
                    observe(SURPLUS, subject, "bench", tenant, holds, "s", facts=facts_json(facts))
                )
            return out

        def unsent() -> int:
            with db.connect() as conn:
                q = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_ms.is_(None))
                return int(conn.execute(q).scalar_one())

        flips: list[dict[str, Any]] = []
        clock = 1_000_000
        for f in range(a.flips):
            obs = observations(holds=f % 2 == 0)
            clock += 3_600_000
            t0 = time.time()
            applied = repo.apply(obs, clock)
            t_end = time.time()
            ids = [nid for x in applied for nid in x.notifications]
            while unsent() > 0:
                time.sleep(0.02)
            t_done = time.time()
            flips.append(
                {
                    "t_end": t_end,
                    "ids": ids,
                    "evaluate_s": t_end - t0,
                    "delivered_s": t_done - t_end,
                }
            )
            print(
                f"flip {f + 1}: {len(obs)} evaluated in {t_end - t0:.2f} s,"
                f" {len(ids)} notifications delivered {t_done - t_end:.2f} s later",
                file=sys.stderr,
            )
        stop.set()
        worker.join(30)
        dispatcher.close()
        channels.close()
        with db.connect() as conn:
            kinds = dict(conn.execute(sa.select(outbox.c.id, outbox.c.channel)).all())
        db.close()
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(30)
        if pg is not None:
            pg.close()
    got = json.loads(out_path.read_text())
    shutil.rmtree(work, ignore_errors=True)
    arrived: dict[str, float] = got["arrived"]
    latencies: list[float] = []
    hooks_sent = 0
    first_at, last_at = float("inf"), 0.0
    for flip in flips:
        for nid in flip["ids"]:
            if kinds.get(nid) != "webhook":
                continue
            hooks_sent += 1
            at = arrived.get(nid)
            if at is None:
                continue
            latencies.append((at - flip["t_end"]) * 1000)
            first_at, last_at = min(first_at, at), max(last_at, at)
    expected_hooks = {n for flip in flips for n in flip["ids"] if kinds.get(n) == "webhook"}
    lost = len(expected_hooks - set(arrived))
    emails_expected = sum(1 for flip in flips for n in flip["ids"] if kinds.get(n) == "email")
    evaluated = meters * a.flips
    evaluate_s = sum(f["evaluate_s"] for f in flips)
    per_flip_span = [
        max((arrived[n] for n in f["ids"] if n in arrived), default=f["t_end"]) - f["t_end"]
        for f in flips
    ]
    result = {
        "meters": meters,
        "flips": a.flips,
        "database": "postgresql" if a.postgres else "sqlite",
        "evaluations_per_s": round(evaluated / evaluate_s),
        "webhooks": hooks_sent,
        "batch": a.batch,
        "webhook_requests": got["requests"],
        # delivery rate within each flip: its webhooks over the time from the evaluation's
        # end to the last one's arrival
        "notifications_per_s": round(hooks_sent / sum(per_flip_span)) if hooks_sent else 0,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "emails": got["emails"],
        "emails_expected": emails_expected,
        "lost": lost + max(0, emails_expected - got["emails"]),
        "duplicated": got["duplicated"],
        "bad_signatures": got["bad_signatures"],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
