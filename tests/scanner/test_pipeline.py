"""The pipeline `borderledger scan` and `borderledger bench scan` share: decoding in worker
processes, verification from threads, results in file order."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.scan
import scanner.cli
import scanner.pipeline
from ledger.digital_link import DigitalLink
from scanner.damage import synth_photo
from scanner.online import CodeResult, GatewayUnreachable
from scanner.pipeline import PARALLEL_FROM, Decoder, scan_files

GTIN = "09506000134352"


def photos(folder: Path, n: int) -> dict[str, str]:
    """`n` photos of one QR each, named so that their order is known; name -> text."""
    texts = {}
    for i in range(n):
        text = DigitalLink(GTIN, "L7", f"P{i:03d}", bytes(range(65))).to_uri()
        photo = synth_photo([(text, "qr", None)], "rotation", "mild", i)
        (folder / f"{i:03d}.jpg").write_bytes(photo.jpeg)
        texts[f"{i:03d}.jpg"] = text
    return texts


def test_the_command_and_the_bench_decode_through_the_same_pipeline() -> None:
    assert scanner.cli.scan_files is scanner.pipeline.scan_files
    assert bench.scan.Decoder is scanner.pipeline.Decoder


def test_files_are_decoded_in_parallel_and_judged_in_file_order(tmp_path: Path) -> None:
    texts = photos(tmp_path, PARALLEL_FROM + 2)
    (tmp_path / "zz-corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    files = sorted(tmp_path.iterdir())
    seen: list[str] = []

    batches: list[int] = []

    def online(codes: list[CodeResult]) -> list[CodeResult]:
        batches.append(len(codes))
        for result in codes:
            result.verdict = "GENUINE"
        return codes

    def judge(result: CodeResult) -> CodeResult:
        seen.append(result.source)
        return result

    results, unreadable = scan_files(files, judge, online, workers=2, batch=3)
    # The codes go to the gateway in batches of 3 (one request each), the rest at the end.
    assert batches == [3] * (len(texts) // 3) + ([len(texts) % 3] if len(texts) % 3 else [])
    assert [Path(r.source).name for r in results] == sorted(texts)
    assert [r.payload.raw for r in results] == [texts[name] for name in sorted(texts)]
    assert all(r.verdict == "GENUINE" for r in results) and seen == []
    assert [Path(u["source"]).name for u in unreadable] == ["zz-corrupt.png"]
    assert "not a readable image" in unreadable[0]["error"]


def test_an_unreachable_gateway_hands_codes_to_the_judge_in_order(tmp_path: Path) -> None:
    texts = photos(tmp_path, PARALLEL_FROM)
    files = sorted(tmp_path.iterdir())
    queued: list[str] = []

    def online(codes: list[CodeResult]) -> list[CodeResult]:
        raise GatewayUnreachable("connection refused")

    def judge(result: CodeResult) -> CodeResult:
        queued.append(Path(result.source).name)
        result.queued = f"scan-{len(queued)}"
        return result

    results, unreadable = scan_files(files, judge, online, workers=2, batch=4)
    assert queued == sorted(texts) and unreadable == []
    assert [r.queued for r in results] == [f"scan-{i + 1}" for i in range(len(texts))]


def test_the_decoder_reports_each_source_once(tmp_path: Path) -> None:
    texts = photos(tmp_path, PARALLEL_FROM + 1)
    sources: list[Path | bytes] = [tmp_path / name for name in sorted(texts)]
    sources.append(b"not an image")
    with Decoder(2) as decoder:
        decoded = sorted(decoder.decode(sources, ordered=False), key=lambda d: d.index)
    assert [d.index for d in decoded] == list(range(len(sources)))
    assert [d.codes[0].text for d in decoded[:-1]] == [texts[n] for n in sorted(texts)]
    assert decoded[-1].codes == [] and decoded[-1].error is not None
    assert all(d.seconds >= 0 for d in decoded)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_few_files_or_one_worker_decode_in_this_process(tmp_path: Path, workers: int) -> None:
    texts = photos(tmp_path, 2)
    with Decoder(workers) as decoder:
        decoded = list(decoder.decode(sorted(tmp_path.iterdir())))
        assert decoder._pool is None  # no processes forked for two files
    assert [d.codes[0].text for d in decoded] == [texts[n] for n in sorted(texts)]
