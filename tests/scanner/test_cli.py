"""`borderledger scan` as a subprocess against a real gateway over HTTP."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from PIL import Image

from api.threaded import serve_in_thread
from chain.node import LocalNode
from ledger.digital_link import DigitalLink
from scanner.damage import label_for, photograph, render_ean13, synth_photo
from scanner.online import CodeResult, Verifier
from scanner.payload import classify
from tests.scanner.conftest import SERIALS, Served
from tests.stack import GTIN, TEST_LIMITS, Stack, borderledger, running_stack


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return borderledger(home, "scan", *args)


def scan_json(served: Served, home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = run(home, *args, "--gateway", served.url, "--api-key", served.officer_key, "--json")
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def photo_of(served: Served, path: Path, serial: str, kind: str = "qr", seed: int = 0) -> Path:
    pairs = [("01", GTIN), ("17", "281231"), ("10", "L1"), ("21", serial)]
    spec = (served.tags[serial], "qr", None) if kind == "qr" else ("", "datamatrix", pairs)
    path.write_bytes(synth_photo([spec], "perspective", "moderate", seed).jpeg)  # type: ignore[list-item]
    return path


def test_genuine_tags_and_datamatrix_exit_0(served: Served, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    photo_of(served, folder / "a.jpg", SERIALS[0])
    photo_of(served, folder / "b.jpg", SERIALS[1], "datamatrix", seed=1)
    code, report = scan_json(served, tmp_path, str(folder), "--location", "NLRTM")
    assert code == 0, report
    by_source = {Path(c["source"]).name: c for c in report["codes"]}
    assert by_source["a.jpg"]["verdict"] == "GENUINE"
    assert by_source["a.jpg"]["payload"]["kind"] == "tag"
    assert by_source["a.jpg"]["payload"]["signed"] is True
    assert by_source["b.jpg"]["verdict"] == "GENUINE_UNSIGNED"
    assert by_source["b.jpg"]["payload"]["kind"] == "gs1"
    assert by_source["b.jpg"]["payload"]["serial"] == SERIALS[1]
    assert "SIGNATURE_MISSING" in by_source["b.jpg"]["reasons"]
    assert report["counts"]["verdicts"] == {"GENUINE": 1, "GENUINE_UNSIGNED": 1}
    assert report["exit_code"] == 0


def test_rich_output_and_dev_json_defaults(served: Served, tmp_path: Path) -> None:
    (tmp_path / "dev.json").write_text(
        json.dumps({"gateway_url": served.url, "api_keys": {"officer": served.officer_key}})
    )
    image = photo_of(served, tmp_path / "label.jpg", SERIALS[2])
    proc = run(tmp_path, str(image))
    assert proc.returncode == 0, proc.stderr
    assert "Scan results" in proc.stdout
    assert "GENUINE" in proc.stdout and SERIALS[2] in proc.stdout
    assert "all codes read and cleared" in proc.stdout


def test_suspect_verdict_exits_3(served: Served, tmp_path: Path) -> None:
    forged = DigitalLink(GTIN, "L1", "NOT-ENROLLED").to_uri()
    image = tmp_path / "forged.png"
    photograph([label_for(forged, "qr")], random.Random(0)).save(image)
    code, report = scan_json(served, tmp_path, str(image))
    assert code == 3
    assert report["codes"][0]["verdict"] == "COUNTERFEIT_SUSPECT"
    assert "SERIAL_UNKNOWN" in report["codes"][0]["reasons"]
    proc = run(tmp_path, str(image), "--gateway", served.url, "--api-key", served.officer_key)
    assert proc.returncode == 3 and "hold" in proc.stdout


def test_typed_serial_and_code(served: Served, tmp_path: Path) -> None:
    code, report = scan_json(
        served,
        tmp_path,
        "--serial",
        GTIN,
        SERIALS[3],
        "--lot",
        "L1",
        "--code",
        f"(01){GTIN}(17)281231(10)L1(21){SERIALS[4]}",
    )
    assert code == 0, report
    assert [c["verdict"] for c in report["codes"]] == ["GENUINE_UNSIGNED", "GENUINE_UNSIGNED"]
    assert [c["payload"]["kind"] for c in report["codes"]] == ["typed", "gs1"]


def test_nothing_readable_exits_2(served: Served, tmp_path: Path) -> None:
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (400, 300), (180, 160, 120)).save(blank)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ean = tmp_path / "ean.png"
    photograph([render_ean13("5901234123457")], random.Random(0), (600, 300)).save(ean)
    url_code = tmp_path / "url.png"
    photograph([label_for("https://example.com/win-a-prize", "qr")], random.Random(0)).save(
        url_code
    )
    code, report = scan_json(served, tmp_path, str(blank), str(corrupt), str(ean), str(url_code))
    assert code == 2
    errors = {Path(u["source"]).name: u["error"] for u in report["unreadable"]}
    assert "no barcode found" in errors["blank.jpg"]
    assert "corrupt.jpg: not a readable image" in errors["corrupt.jpg"]
    kinds = {Path(c["source"]).name: c for c in report["codes"]}
    assert kinds["ean.png"]["payload"]["kind"] == "foreign"
    assert "EAN-13" in kinds["ean.png"]["error"]
    assert "web address" in kinds["url.png"]["error"]
    assert all(c["verdict"] is None for c in report["codes"])

    proc = run(tmp_path, str(blank), "--gateway", served.url, "--api-key", "k")
    assert proc.returncode == 2
    assert "no barcode found" in proc.stdout and "nothing could be read" in proc.stdout


def test_partial_read_exits_1_and_bad_input_is_one_line(served: Served, tmp_path: Path) -> None:
    good = photo_of(served, tmp_path / "good.jpg", SERIALS[5])
    blank = tmp_path / "blank.png"
    Image.new("L", (300, 300), 255).save(blank)
    code, report = scan_json(served, tmp_path, str(good), str(blank))
    assert code == 1
    assert report["counts"]["judged"] == 1 and report["counts"]["unreadable_files"] == 1

    missing = run(tmp_path, str(tmp_path / "nope.jpg"), "--gateway", served.url, "--api-key", "k")
    assert missing.returncode == 2 and "nope.jpg: no such file or folder" in missing.stderr
    no_gateway = run(tmp_path, str(good))
    assert no_gateway.returncode == 2 and "no gateway" in no_gateway.stderr
    bad_key = run(tmp_path, str(good), "--gateway", served.url, "--api-key", "wrong")
    assert bad_key.returncode == 1 and "refused the API key" in bad_key.stderr
    assert "Traceback" not in bad_key.stderr


def test_a_folder_is_decoded_in_parallel_and_reported_in_file_order(
    served: Served, tmp_path: Path
) -> None:
    """Enough photos for the worker processes (scanner.pipeline), verified concurrently."""
    from scanner.pipeline import PARALLEL_FROM

    folder = tmp_path / "many"
    folder.mkdir()
    names = []
    for i, serial in enumerate(SERIALS):
        names.append(f"{i:02d}.jpg")
        photo_of(served, folder / names[-1], serial, "qr" if i % 3 else "datamatrix", seed=i)
    assert len(names) >= PARALLEL_FROM
    code, report = scan_json(served, tmp_path, str(folder))
    assert code == 0, report
    assert [Path(c["source"]).name for c in report["codes"]] == names
    assert [c["payload"]["serial"] for c in report["codes"]] == SERIALS
    assert report["counts"]["judged"] == len(SERIALS)


def test_scan_starts_without_web3() -> None:
    """`borderledger scan` over a folder is timed from start to exit: importing web3 (the
    rest of the command line, or the chain check) cost it 1.1 s of CPU before the first
    photo. The scan-only entry must not bring it in, nor lose the command's help and exit
    codes."""
    code = (
        "import sys\n"
        "sys.argv = ['borderledger', 'scan', *sys.argv[1:]]\n"
        "from borderledger.entry import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('web3 imported:', 'web3' in sys.modules, file=sys.stderr)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0 and "Usage: borderledger scan" in shown.stdout
    assert shown.stderr.strip().splitlines()[-1] == "web3 imported: False"
    refused = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "nothing to scan" in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == "web3 imported: False"


@contextmanager
def _two_a_second(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> Iterator[tuple[Stack, dict[str, Any], list[CodeResult]]]:
    """A stack whose `verify` limit is 2 a second, an officer, and the codes of an enrolled
    batch's tags (more codes than the limit lets through at once)."""
    limits = {**TEST_LIMITS, "verify": "2/second"}
    with running_stack(
        anvil, database, tmp_path, rate_limits=limits, rate_limits_per_address=limits
    ) as stack:
        holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
        officer = stack.org("NL Customs", "customs")
        batch = stack.enroll(holder["apiKey"], serials=SERIALS, expiry="281231")
        stack.sync()
        tags = [t["uri"] for t in stack.tags(holder["apiKey"], str(batch["batchId"]))]
        yield stack, officer, [CodeResult(f"tag {i}", classify(uri)) for i, uri in enumerate(tags)]


def test_a_scan_faster_than_the_verify_limit_waits_and_judges_every_code(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> None:
    """A folder verifies faster than one key's `verify` limit allows: each 429 is waited out
    (Retry-After) and every code is judged (the scan used to end with a gateway error)."""
    with (
        _two_a_second(anvil, database, tmp_path) as (stack, officer, results),
        serve_in_thread(stack.client.app, "uvicorn-scan-limit") as url,
        Verifier(url, officer["apiKey"]) as verifier,
        ThreadPoolExecutor(len(results)) as pool,
    ):
        judged = list(pool.map(verifier.judge, results))
    assert len(judged) == len(SERIALS) > 2
    assert {r.verdict for r in judged} == {"GENUINE"}, [r.error for r in judged]


def test_a_batch_over_the_verify_limit_sends_the_refused_codes_again(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> None:
    """`Verifier.judge_many` (a folder's codes in POST /v1/verify/batch requests): the items
    the per-item limit refuses (429 in the answer) are sent again after their `retryAfter`,
    every code is judged once, and a code that cannot be checked is reported, not sent."""
    with _two_a_second(anvil, database, tmp_path) as (stack, officer, results):
        results.append(CodeResult("web", classify("https://example.com/hello")))
        with (
            serve_in_thread(stack.client.app, "uvicorn-scan-batch") as url,
            Verifier(url, officer["apiKey"]) as verifier,
        ):
            judged = verifier.judge_many(results, "NLRTM")
        stack.sync()
        with stack.gateway.engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT count(*) FROM scan_events")).scalar()
    assert judged is results and len(SERIALS) > 2
    assert [r.verdict for r in judged[:-1]] == ["GENUINE"] * len(SERIALS), [r.error for r in judged]
    assert judged[-1].verdict is None and judged[-1].error
    assert rows == len(SERIALS)  # each code recorded once: refused items were not


def test_a_folder_gets_the_verdicts_each_photo_gets_alone(served: Served, tmp_path: Path) -> None:
    """The command's pipeline (decoding in worker processes, verification from threads) gives
    each photo the codes and verdicts it gets decoded and verified on its own: phone-like
    damage (scanner.damage `handheld`, `bottle`), a DataMatrix, a forged tag and a blank."""
    from scanner.decode import decode_file
    from scanner.pipeline import PARALLEL_FROM

    folder = tmp_path / "mixed"
    folder.mkdir()
    pairs = [("01", GTIN), ("17", "281231"), ("10", "L1"), ("21", SERIALS[5])]
    forged = DigitalLink(GTIN, "L1", SERIALS[4], bytes(range(65))).to_uri()
    specs: list[tuple[str, str, Any]] = [
        (served.tags[SERIALS[0]], "handheld", None),
        (served.tags[SERIALS[1]], "bottle", None),
        (served.tags[SERIALS[2]], "handheld", None),
        (served.tags[SERIALS[3]], "bottle", None),
        (forged, "handheld", None),
        ("", "bottle", pairs),
    ]
    for i, (text, kind, gs1) in enumerate(specs):
        spec = (text, "qr", None) if gs1 is None else ("", "datamatrix", gs1)
        photo = synth_photo([spec], kind, "moderate", 31 + i)  # type: ignore[list-item]
        (folder / f"{i:02d}.jpg").write_bytes(photo.jpeg)
    (folder / "07.png").write_bytes(_blank_png())
    files = sorted(folder.iterdir())
    assert len(files) > PARALLEL_FROM

    alone: list[tuple[str, str, str | None]] = []
    unread_alone: list[str] = []
    with Verifier(served.url, served.officer_key) as verifier:
        for path in files:
            codes = decode_file(path)
            if not codes:
                unread_alone.append(path.name)
            for found in codes:
                result = CodeResult(str(path), classify(found.text, found.symbology_id, found.gs1))
                verdict = verifier.judge(result).verdict
                alone.append((path.name, result.payload.raw, verdict))

    code, report = scan_json(served, tmp_path, str(folder))
    together = [
        (Path(c["source"]).name, c["payload"]["raw"], c["verdict"]) for c in report["codes"]
    ]
    assert together == alone
    verdicts = {name: verdict for name, _, verdict in together}
    assert verdicts["00.jpg"] == "GENUINE" and verdicts["05.jpg"] == "GENUINE_UNSIGNED"
    assert verdicts["04.jpg"] not in ("GENUINE", "GENUINE_UNSIGNED", None)
    # The same photos unread in the folder as alone: the blank, and at most one moderate
    # photo (97 % of them read: which one misses depends on the tag the run signed).
    assert [Path(u["source"]).name for u in report["unreadable"]] == unread_alone
    assert "07.png" in unread_alone and len(unread_alone) <= 2
    assert code == 3  # the forged tag: hold the item


def _blank_png() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("L", (320, 240), 230).save(buffer, format="PNG")
    return buffer.getvalue()
