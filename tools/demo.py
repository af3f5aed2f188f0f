"""``make demo``: the data plane working end to end on the real handlers, wired from the dev stack's records.

moto plays AWS and the embedded PostgreSQL plays MacroDB (``tools/harness``): buckets, queues, tables, secrets, rules,
subscriptions and mappings are created from the recorded resources, every handler runs in-process with its recorded
environment, and every AWS call it makes is authorised against its recorded role policy. Four scenes:

1. a DOCX and a PDF from the shared corpus uploaded: the DOCX bucket's notification runs the unzip, the documents
   bucket's EventBridge rule runs the extractor; rows in the database, a conversion job and a search event queued;
2. a bulk-upload zip of the same files: the staging rule, the bulk-upload queue and its mapping, then both paths;
3. a document deleted with all its versions by the deleted-item poller's schedule and the delete-document worker;
4. a poison message that ends in its DLQ after the recorded receives, with the alarm that would page on-call.

It prints what arrived where, which function ran, how long it took and what it wrote, and exits 0 only if every
expected step happened. The corpus is read where it lies (``<repo>/../shared/corpus``, else ``/work/shared/corpus``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")  # moto only; nothing here can reach an account
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)

from moto import mock_aws  # noqa: E402

from plan.evaluate import evaluate_stack  # noqa: E402
from tools.harness import seed  # noqa: E402
from tools.harness.postgres import Postgres, running_postgres  # noqa: E402
from tools.harness.world import Invocation, World  # noqa: E402

DOCX = "docx/d2p__test-docx2python-conversion-google_docs.docx"
PDF = "pdf/plb__la-precinct-bulletin-2014-p1.pdf"
USER = "macro|newcomer@example.com"
WRITES = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "sqs:SendMessage", "dynamodb:PutItem",
          "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "secretsmanager:PutSecretValue")
TABLES = ("Document", "DocumentText", "DocumentTextParts", "DocumentTextExtraction", "DocumentBom", "BomPart",
          "DeletionDispatch", "ConvertJobDispatch")


def corpus() -> Path:
    for candidate in (REPO.parent / "shared" / "corpus", Path("/work/shared/corpus")):
        if candidate.is_dir():
            return candidate
    raise SystemExit("the shared corpus is neither at <repo>/../shared/corpus nor at /work/shared/corpus")


class Demo:
    def __init__(self, world: World, pg: Postgres) -> None:
        self.world, self.pg = world, pg
        self.started = time.monotonic()
        self.wall_started = time.time()
        self.failures: list[str] = []
        self.shown = 0

    def scene(self, title: str) -> None:
        print(f"\n== {title}")

    def say(self, text: str) -> None:
        print(f"   {time.time() - self.wall_started:6.2f}s  {text}")

    def check(self, ok: bool, what: str) -> None:
        print(f"           {'✔' if ok else '✘ MISSING:'} {what}")
        if not ok:
            self.failures.append(what)

    def counts(self) -> Counter[str]:
        return Counter({t: self.pg.query(f'SELECT count(*) FROM "{t}"')[0][0] for t in TABLES})

    def settle(self, before: Counter[str] | None = None) -> list[Invocation]:
        before = before if before is not None else self.counts()
        runs = self.world.settle()
        self.show(runs)
        after = self.counts()
        changes = [f"{t} {after[t] - before[t]:+d}" for t in TABLES if after[t] != before[t]]
        if changes:
            self.say("database: " + ", ".join(changes))
        return runs

    def show(self, runs: list[Invocation]) -> None:
        """One line per invocation (identical consecutive ones folded), then what it wrote, by bucket prefix."""
        index = 0
        while index < len(runs):
            run, same = runs[index], 1
            while (index + same < len(runs) and (runs[index + same].via, runs[index + same].function,
                                                 runs[index + same].outcome) == (run.via, run.function, run.outcome)
                   and not any(n.action in WRITES for c in runs[index + same].calls for n in c.needs)):
                same += 1
            at = run.started - self.wall_started
            folded = f" ×{same}" if same > 1 else ""
            print(f"   {at:6.2f}s  {run.via}  →  {run.function}{folded} ({run.duration_ms:.0f} ms): {run.outcome}")
            written = Counter(f"{n.action} {_short(n.resource)}" for c in run.calls for n in c.needs
                              if n.action in WRITES and c.denied is None)
            for what, times in sorted(written.items()):
                print(f"{'':20}wrote {what}{f' (×{times})' if times > 1 else ''}")
            for call in run.calls:
                if call.denied:
                    print(f"{'':20}DENIED {call.denied.action} on {call.denied.resource} (recorded policy)")
            index += same

    def queued(self, queue: str) -> list[dict]:
        return self.world.messages(self.world.queue_url(queue))


def _short(resource: str) -> str:
    """A queue or table name, or ``bucket/first-segment/…`` for objects."""
    name = resource.rsplit(":", 1)[-1]
    if resource.startswith("arn:aws:s3:::"):
        bucket, _, key = name.partition("/")
        first, _, rest = key.partition("/")
        return f"{bucket}/{first}/{'…' if rest else ''}"
    return name


def upload_documents(demo: Demo, docx: bytes, pdf: bytes) -> None:
    world, pg = demo.world, demo.pg
    demo.scene(f"1. A DOCX and a PDF from the shared corpus ({DOCX}, {PDF})")
    owner = quote(USER, safe="")
    for doc_id, kind in (("demo-docx", "docx"), ("demo-pdf", "pdf")):
        pg.query('INSERT INTO "Document" (id, owner, name, "fileType") VALUES (%s, %s, %s, %s)', doc_id, USER, doc_id,
                 kind)
    # The upload API registers the DOCX's bill of materials first; its id is the key's version.
    bom = pg.query('INSERT INTO "DocumentBom" ("documentId") VALUES (%s) RETURNING id', "demo-docx")[0][0]
    demo.say(f"documents demo-docx (BOM {bom}) and demo-pdf registered in \"Document\" by the upload API")
    before = demo.counts()
    world.put_object("docx-upload", f"{owner}/demo-docx/{bom}.docx", docx)
    demo.say(f"uploaded {len(docx)} bytes to s3://{world.bucket('docx-upload')}/{owner}/demo-docx/{bom}.docx")
    world.put_object("documents", f"{owner}/demo-pdf/1.pdf", pdf)
    demo.say(f"uploaded {len(pdf)} bytes to s3://{world.bucket('documents')}/{owner}/demo-pdf/1.pdf")
    runs = demo.settle(before)
    demo.check(any(r.function == "docx_unzip" and r.via.startswith("S3 notification") and r.outcome == "ok"
                   for r in runs), "the DOCX bucket's notification ran docx_unzip")
    demo.check(any(r.function == "text_extractor" and r.via.startswith("EventBridge rule") and r.outcome == "ok"
                   for r in runs), "the documents bucket's rule ran text_extractor")
    demo.check(pg.query('SELECT count(*) FROM "BomPart"')[0][0] > 0, "DOCX parts recorded in BomPart")
    text = pg.query('SELECT content FROM "DocumentText" WHERE "documentId" = %s', "demo-pdf")
    chars = len(text[0][0]) if text else 0
    demo.check(chars > 20, f"PDF text in DocumentText ({chars} chars)")
    jobs = demo.queued("convert-service")
    demo.check(len(jobs) == 1, f"one conversion job on {world.queue_url('convert-service').rsplit('/', 1)[1]}")
    events = demo.queued("search-event")
    queue = world.queue_url("search-event").rsplit("/", 1)[1]
    demo.check(any("demo-pdf" in m["Body"] for m in events),
               f"search event on {queue}: {events[0]['Body'] if events else '-'}")


def bulk_upload(demo: Demo, docx: bytes, pdf: bytes) -> None:
    from bulk_upload import handler as bulk

    world = demo.world
    demo.scene("2. A bulk-upload zip")
    rid = seed.bulk_upload_request(world, USER)
    table = world.table("bulk-upload")
    demo.say(f"upload request {rid} registered in {table}")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Upload/report.docx", docx)
        zf.writestr("Upload/bulletin.pdf", pdf)
        zf.writestr("Upload/notes.txt", "Notes from the bulk upload")
    world.put_object("bulk-upload-staging", f"extract/{rid}", archive.getvalue())
    demo.say(f"uploaded a {len(archive.getvalue())}-byte zip to s3://{world.bucket('bulk-upload-staging')}/extract/{rid}")
    runs = demo.settle()
    demo.check(any(r.function == "bulk_upload" and r.via.startswith("SQS") and r.outcome == "ok" for r in runs),
               "the staging rule queued the upload and bulk_upload consumed it")
    with world.acting_as("bulk_upload"):
        status = bulk.load_request(table, rid)["status"]
    demo.check(status == "completed", f"request status {status}")
    demo.check(sum(r.function == "text_extractor" and r.outcome == "ok" for r in runs) >= 2,
               "the stored PDF and text file were extracted")
    demo.check(any(r.function == "docx_unzip" and r.outcome == "ok" for r in runs), "the stored DOCX was unzipped")
    demo.queued("convert-service"), demo.queued("search-event")


def delete_document(demo: Demo, pdf: bytes) -> None:
    world, pg = demo.world, demo.pg
    demo.scene("3. A document deleted with all its versions")
    owner = quote(USER, safe="")
    key = f"{owner}/demo-pdf/1.pdf"
    world.put_object("documents", key, pdf + b"\n% second version")
    world.s3.delete_object(Bucket=world.bucket("documents"), Key=key)
    demo.settle()
    versions = world.s3.list_object_versions(Bucket=world.bucket("documents"), Prefix=f"{owner}/demo-pdf/")
    count = len(versions.get("Versions", [])) + len(versions.get("DeleteMarkers", []))
    demo.say(f"{key}: {count} versions and delete markers stored")
    pg.query("""UPDATE "Document" SET "deletedAt" = now() - interval '40 days' WHERE id = %s""", "demo-pdf")
    demo.say("the user deleted demo-pdf 40 days ago (\"Document\".\"deletedAt\")")
    before = demo.counts()
    runs = world.schedule("deleted-item-poller")
    demo.show(runs)
    after = demo.counts()
    demo.say("database: " + ", ".join(f"{t} {after[t] - before[t]:+d}" for t in TABLES if after[t] != before[t]))
    demo.check(any(r.function == "delete_document" and r.via.startswith("SQS") for r in runs),
               "the poller's job reached delete_document through its queue")
    versions = world.s3.list_object_versions(Bucket=world.bucket("documents"), Prefix=f"{owner}/demo-pdf/")
    left = len(versions.get("Versions", [])) + len(versions.get("DeleteMarkers", []))
    demo.check(left == 0, f"no version or delete marker left ({left})")
    demo.check(pg.query('SELECT count(*) FROM "Document" WHERE id = %s', "demo-pdf") == [[0]], "rows removed")
    removals = demo.queued("search-event")
    demo.check(any("demo-pdf" in m["Body"] for m in removals), "search removal queued")


def poison_message(demo: Demo) -> None:
    world = demo.world
    demo.scene("4. A poison message")
    queue = "delete-document-handler"
    world.send_message(queue, "not a document id")  # no document_id attribute: can never succeed
    demo.say(f"a message without its document_id attribute sent to {world.queue_url(queue).rsplit('/', 1)[1]}")
    runs = demo.settle()
    dlq = world.dlq_url(queue)
    dead = world.messages(dlq, delete=False)
    attributes = world.sqs.get_queue_attributes(QueueUrl=world.queue_url(queue), AttributeNames=["RedrivePolicy"])
    policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
    demo.check(len(runs) == int(policy["maxReceiveCount"]),
               f"received {len(runs)} times (recorded maxReceiveCount {policy['maxReceiveCount']})")
    demo.check([m["Body"] for m in dead] == ["not a document id"], f"now in {dlq.rsplit('/', 1)[1]}")
    firing = world.alarms_firing()
    for alarm in firing:
        demo.say(f"ALARM {alarm.name}: {alarm.description} → {', '.join(a.rsplit(':', 1)[1] for a in alarm.actions)}")
    demo.check(any(a.queue == dlq.rsplit("/", 1)[1] for a in firing), "the DLQ's alarm would page on-call")


def _handler_logs_to_file() -> Path:
    """The handlers' JSON logs go to a file, so the timeline stays readable (the path is printed at the end)."""
    sys.path.insert(0, str(REPO / "lambdas"))
    from core.logging import logger

    path = Path(tempfile.gettempdir()) / "macro-demo-handlers.log"
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(path.open("w"))
    return path


def main() -> int:
    log_path = _handler_logs_to_file()
    source = corpus()
    docx, pdf = (source / DOCX).read_bytes(), (source / PDF).read_bytes()
    print("macro-infra data plane demo: the real handlers on moto and an embedded PostgreSQL, wired from the dev "
          "stack's records")
    clock = time.monotonic()
    records = evaluate_stack("dev")
    print(f"   evaluated the dev stack under Pulumi mocks: {len(records)} recorded resources "
          f"({time.monotonic() - clock:.1f}s)")
    clock = time.monotonic()
    with running_postgres() as pg:
        where = pg.url.split("@", 1)[1]
        print(f"   embedded PostgreSQL with db/schema.sql on {where} ({time.monotonic() - clock:.1f}s)")
        with mock_aws(), World.build(records, database_url=pg.url) as world:
            print(f"   world built in {world.build_seconds:.2f}s: {len(world.functions)} functions, "
                  f"{len(world.mappings)} queue mappings, {len(world.alarms)} queue alarms")
            demo = Demo(world, pg)
            scenes: list[Callable[[], None]] = [lambda: upload_documents(demo, docx, pdf),
                                                lambda: bulk_upload(demo, docx, pdf),
                                                lambda: delete_document(demo, pdf), lambda: poison_message(demo)]
            for scene in scenes:
                try:
                    scene()
                except Exception as exc:  # a scene that crashes is a failed step, reported with the others
                    demo.failures.append(f"{type(exc).__name__}: {exc}")
                    print(f"           ✘ {type(exc).__name__}: {exc}")
            denied = world.denied_calls()
            calls = len(world.enforcer.calls)
            demo.check(not denied, f"every AWS call allowed by the recorded policies ({calls} calls)")
    if demo.failures:
        print(f"\nFAILED: {len(demo.failures)} step(s) did not happen:\n  - " + "\n  - ".join(demo.failures))
        return 1
    print(f"\nevery step happened ({len(world.timeline)} invocations, {time.monotonic() - demo.started:.1f}s); "
          f"the handlers' logs are in {log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
