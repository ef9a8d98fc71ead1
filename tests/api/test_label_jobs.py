"""Label files above the synchronous limit: a `labels` job with progress, its file streamed
when done (a label's QR decodes to the batch's tag), chunked rendering, the same job when
asked twice, cancel and retry as for any job."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

import api.labels
from api.jobs import JobContext, JobRunner
from chain.enroll import qr_file_stem
from tests.stack import Stack

SERIALS = [f"LBL{i:04d}" for i in range(70)]
#: The labels print QR codes; reading every format finds phantom linear codes in them.
QR = zxingcpp.BarcodeFormat.QRCode
LIMIT, CHUNK = 50, 16


@pytest.fixture
def holder(stack: Stack) -> dict[str, Any]:
    return stack.org("Acme Pharma", "rights_holder", "TMK 1")


@pytest.fixture
def batch(stack: Stack, holder: dict[str, Any]) -> dict[str, Any]:
    enrolled = stack.enroll(holder["apiKey"], lot="LJ/1", serials=SERIALS)
    stack.sync()
    stack.gateway.settings.sync_label_limit = LIMIT
    stack.gateway.settings.label_chunk = CHUNK
    return enrolled


@contextmanager
def _paused(stack: Stack) -> Iterator[None]:
    """The gateway's own runner takes no job: the test runs them with `_runner`."""
    stack.gateway.jobs.stopping.set()
    try:
        yield
    finally:
        stack.gateway.jobs.stopping.clear()


def _runner(stack: Stack) -> JobRunner:
    return JobRunner(stack.gateway.engine, stack.gateway.jobs.handlers)


def _ask(stack: Stack, key: str, batch_id: str, fmt: str) -> dict[str, Any]:
    r = stack.client.get(f"/v1/batches/{batch_id}/tags?format={fmt}", headers=stack.headers(key))
    assert r.status_code == 202, r.text
    job: dict[str, Any] = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["kind"] == "labels" and job["total"] == len(SERIALS)
    return job


def _job(stack: Stack, key: str, job_id: str) -> dict[str, Any]:
    r = stack.client.get(f"/v1/jobs/{job_id}", headers=stack.headers(key))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _files(stack: Stack) -> list[str]:
    folder: Path = stack.gateway.settings.home / "labels"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _decode(image: Image.Image) -> list[str]:
    """zxing-cpp on an image enlarged 6 times (a PDF's QR image has one pixel per module).
    QR codes only: with every format, zxing once read a 4-character linear code out of a QR
    code's modules ("C82D", a CI failure that depended on the tags' random signatures)."""
    big = image.convert("L").resize((image.width * 6, image.height * 6), Image.Resampling.NEAREST)
    return [d.text for d in zxingcpp.read_barcodes(big, formats=QR)]


def test_a_large_pdf_is_a_job_with_progress_and_a_download(
    stack: Stack, holder: dict[str, Any], batch: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = holder["apiKey"]
    uris = {row["serial"]: row["uri"] for row in stack.tags(key, batch["batchId"])}
    # At or under the limit the file is answered directly (the batch is 70 > 50 here)
    with _paused(stack):
        job = _ask(stack, key, batch["batchId"], "pdf")
        assert job["status"] == "queued" and job["done"] == 0
        # asked twice: the same job; another format: another job
        assert _ask(stack, key, batch["batchId"], "pdf")["id"] == job["id"]
        assert _ask(stack, key, batch["batchId"], "zip")["id"] != job["id"]
        r = stack.client.get(f"/v1/jobs/{job['id']}/file", headers=stack.headers(key))
        assert r.status_code == 409 and "queued" in r.json()["error"]["message"], r.text

        # Rendering is chunked: tags are made CHUNK at a time, progress comes per chunk.
        tagged: list[int] = []
        progress: list[int] = []
        real_chunk, real_advance = api.labels.tag_chunk, JobContext.advance

        def counting_chunk(job: Any, serials: list[str]) -> Any:
            tagged.append(len(serials))
            return real_chunk(job, serials)

        def counting_advance(self: JobContext, items: int) -> None:
            progress.append(items)
            real_advance(self, items)

        monkeypatch.setattr(api.labels, "tag_chunk", counting_chunk)
        monkeypatch.setattr(JobContext, "advance", counting_advance)
        runner = _runner(stack)
        claim = runner.claim()
        while claim is not None and claim.id != job["id"]:  # the zip job may come first
            runner.run(claim)
            claim = runner.claim()
        assert claim is not None
        tagged.clear()
        progress.clear()
        runner.run(claim)
    assert tagged == [16, 16, 16, 16, 6] and max(tagged) <= CHUNK
    assert progress == tagged

    done = _job(stack, key, job["id"])
    assert done["status"] == "done" and done["done"] == len(SERIALS), done
    assert done["result"]["labels"] == len(SERIALS) and done["result"]["format"] == "pdf"
    assert not [name for name in _files(stack) if name.endswith(".part")]

    r = stack.client.get(f"/v1/jobs/{job['id']}/file", headers=stack.headers(key))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert 'filename="' in r.headers["content-disposition"]
    assert len(r.content) == done["result"]["bytes"]
    pdf = PdfReader(io.BytesIO(r.content), strict=True)
    assert len(pdf.pages) == 3  # 28 labels a page
    text = pdf.pages[2].extract_text()
    assert SERIALS[-1] in text and "LJ/1" in text
    # every label of the last page: its QR decodes to that label's tag
    decoded = {t for image in pdf.pages[2].images for t in _decode(image.image)}
    assert decoded == {uris[s] for s in SERIALS[56:]}

    # the admin downloads it too; another holder does not see it
    r = stack.client.get(f"/v1/jobs/{job['id']}/file", headers=stack.headers(stack.admin_key))
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    other = stack.org("Other Brand", "rights_holder", "TMK 2")
    r = stack.client.get(f"/v1/jobs/{job['id']}/file", headers=stack.headers(other["apiKey"]))
    assert r.status_code == 404, r.text
    # asked again once done: the same (done) job
    again = _ask(stack, key, batch["batchId"], "pdf")
    assert again["id"] == job["id"] and again["status"] == "done"


def test_a_large_zip_job_and_its_qr_codes(
    stack: Stack, holder: dict[str, Any], batch: dict[str, Any]
) -> None:
    key = holder["apiKey"]
    uris = {row["serial"]: row["uri"] for row in stack.tags(key, batch["batchId"])}
    with _paused(stack):
        job = _ask(stack, key, batch["batchId"], "zip")
        runner = _runner(stack)
        claim = runner.claim()
        assert claim is not None and claim.id == job["id"]
        runner.run(claim)
    assert _job(stack, key, job["id"])["status"] == "done"
    r = stack.client.get(f"/v1/jobs/{job['id']}/file", headers=stack.headers(key))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert len(archive.namelist()) == 2 * len(SERIALS)
    for serial in (SERIALS[0], SERIALS[-1]):
        png = Image.open(io.BytesIO(archive.read(f"png/{qr_file_stem(serial)}.png")))
        assert [d.text for d in zxingcpp.read_barcodes(png, formats=QR)] == [uris[serial]]
        assert archive.read(f"svg/{qr_file_stem(serial)}.svg").startswith(b"<?xml")


def test_cancel_and_retry_a_label_job(
    stack: Stack, holder: dict[str, Any], batch: dict[str, Any]
) -> None:
    key = holder["apiKey"]
    headers = stack.headers(key)
    with _paused(stack):
        job = _ask(stack, key, batch["batchId"], "pdf")
        # cancelled while running: the runner stops (at the latest when it would put the
        # file in place) and leaves no file, partial or whole
        runner = _runner(stack)
        claim = runner.claim()
        assert claim is not None and claim.id == job["id"]
        r = stack.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        runner.run(claim)
        assert _job(stack, key, job["id"])["status"] == "cancelled"
        assert _files(stack) == []
        r = stack.client.get(f"/v1/jobs/{job['id']}/file", headers=headers)
        assert r.status_code == 409 and "cancelled" in r.text
        # asking again returns the cancelled job; retry queues it again
        assert _ask(stack, key, batch["batchId"], "pdf")["status"] == "cancelled"
        r = stack.client.post(f"/v1/jobs/{job['id']}/retry", headers=headers)
        assert r.status_code == 200 and r.json()["status"] == "queued", r.text
        claim = runner.claim()
        assert claim is not None and claim.id == job["id"]
        runner.run(claim)
    assert _job(stack, key, job["id"])["status"] == "done"
    assert _files(stack) == [f"{job['id']}.pdf"]
    # done: no cancel, no retry
    r = stack.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    assert r.status_code == 409
    r = stack.client.post(f"/v1/jobs/{job['id']}/retry", headers=headers)
    assert r.status_code == 409


def test_under_the_limit_the_file_is_answered_directly(
    stack: Stack, holder: dict[str, Any], batch: dict[str, Any]
) -> None:
    stack.gateway.settings.sync_label_limit = len(SERIALS)
    r = stack.client.get(
        f"/v1/batches/{batch['batchId']}/tags?format=pdf", headers=stack.headers(holder["apiKey"])
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(r.content)).pages) == 3
    # an enrollment job makes no file
    stack.gateway.settings.sync_enroll_limit = 5
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": batch["gtin"], "lot": "E", "serials": [f"E{i}" for i in range(6)]},
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 202, r.text
    r = stack.client.get(
        f"/v1/jobs/{r.json()['jobId']}/file", headers=stack.headers(holder["apiKey"])
    )
    assert r.status_code == 409 and "makes no file" in r.json()["error"]["message"], r.text


def test_racing_requests_store_one_job(
    stack: Stack, holder: dict[str, Any], batch: dict[str, Any]
) -> None:
    """Requests racing for the same label file (threads here, gateway processes in
    production) end with one job: its id is derived from batch and format."""
    from concurrent.futures import ThreadPoolExecutor

    import sqlalchemy as sa

    from api.label_jobs import request_label_file
    from api.models import GatewayBatch

    with _paused(stack):
        with stack.gateway.engine.connect() as connection:
            row = connection.execute(
                sa.select(GatewayBatch).where(GatewayBatch.batch_id == batch["batchId"])  # type: ignore[arg-type]
            ).one()
        stored = GatewayBatch(**row._mapping)
        with ThreadPoolExecutor(4) as pool:
            ids = set(
                pool.map(lambda _: request_label_file(stack.gateway, stored, "zip").id, range(8))
            )
        assert len(ids) == 1
        with stack.gateway.engine.connect() as connection:
            count = connection.execute(
                sa.text("SELECT count(*) FROM jobs WHERE kind = 'labels'")
            ).scalar()
        assert count == 1
