"""Decode photos on every core and ask the gateway about their codes concurrently.

`borderledger scan FOLDER` and `borderledger bench scan` both go through here, so the rate
the bench reports is the command's. Decoding is CPU-bound (zxing-cpp plus Pillow
clean-ups) and runs in worker processes; asking the gateway is waiting on the network and
runs in threads of the main process over one keep-alive client, overlapping the decoding
of later photos. A handful of files is decoded in the main process: forking workers costs
more than it saves.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.pool import Pool
from pathlib import Path

from ledger.errors import InvalidInput
from scanner.decode import DecodedCode, FileResult, decode_file, decode_image_bytes
from scanner.online import CodeResult, GatewayUnreachable, results_of

#: Fewer files than this are decoded in the main process.
PARALLEL_FROM = 6
#: Concurrent requests to the gateway.
VERIFY_THREADS = 4
#: Codes per request to the gateway (POST /v1/verify/batch): small enough that verifying
#: overlaps the decoding of later photos, large enough that HTTP costs little per code.
VERIFY_BATCH = 25


@dataclass(frozen=True, slots=True)
class Decoded:
    """The codes read from one source (by its index in the input), or why none were, the
    decoding time in seconds and the CPU time it took (which a loaded machine does not
    stretch)."""

    index: int
    codes: list[DecodedCode]
    error: str | None
    seconds: float
    cpu_seconds: float = 0.0


def _worker_init() -> None:
    # Workers inherit the command's SIGTERM handler (sys.exit), which cannot run while a
    # worker waits on the pool's queue lock: Pool.terminate() then hung. Die at once instead.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def decode_one(job: tuple[int, Path | bytes]) -> Decoded:
    """Decode one file or encoded image; a worker answers for every image, never raises."""
    index, source = job
    name = str(source) if isinstance(source, Path) else f"image {index}"
    started, cpu = time.perf_counter(), time.process_time()
    try:
        codes = decode_file(source) if isinstance(source, Path) else decode_image_bytes(source)
        error = None if codes else f"{name}: no barcode found in the image"
    except InvalidInput as exc:
        codes, error = [], str(exc)
    except Exception as exc:  # a damaged image must not stop a folder's scan
        codes, error = [], f"{name}: could not be decoded ({type(exc).__name__}: {exc})"
    return Decoded(index, codes, error, time.perf_counter() - started, time.process_time() - cpu)


class Decoder:
    """A pool of decoding processes (all cores by default), forked when first needed.

    Create it before starting any thread in this process: forking a threaded process can
    deadlock."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: Pool | None = None

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            context = get_context("fork" if sys.platform != "win32" else "spawn")
            self._pool = context.Pool(self.workers, initializer=_worker_init)
        return self._pool

    def decode(
        self, sources: Sequence[Path | bytes], ordered: bool = True, chunksize: int = 1
    ) -> Iterator[Decoded]:
        """Decoded sources as they are ready (in input order when `ordered`). The workers
        start on them at once, before the iterator is first advanced (`borderledger scan`
        sets up its gateway client meanwhile); in this process, a handful is decoded as
        the iterator is advanced.

        One source per task by default: a photo nothing reads takes ten to a hundred times
        an easy one's CPU, and four to a task left one core idle at the end of a folder
        while the other decoded the last task's (0.3 s of 9 over 400 bench photos)."""
        jobs = list(enumerate(sources))
        if len(jobs) < PARALLEL_FROM or self.workers == 1:
            return map(decode_one, jobs)
        mapper = self.pool.imap if ordered else self.pool.imap_unordered
        return mapper(decode_one, jobs, chunksize=chunksize)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def scan_files(
    files: Sequence[Path],
    judge: Callable[[CodeResult], CodeResult],
    online: Callable[[list[CodeResult]], list[CodeResult]] | None,
    *,
    decoded: Iterator[Decoded] | None = None,
    workers: int | None = None,
    threads: int = VERIFY_THREADS,
    advance: Callable[[], None] | None = None,
    batch: int = VERIFY_BATCH,
) -> tuple[list[CodeResult], list[dict[str, str]]]:
    """Decode `files` in parallel and judge every code, in file order.

    `decoded`: the files already being decoded, in their order (`Decoder.decode(files)`,
    started before the caller set up `judge`); by default they are decoded here, on
    `workers` processes (all cores).

    `online`: the gateway call for a batch of codes (thread-safe; `Verifier.judge_many`:
    one request per `batch` codes, not one per code), run from `threads` threads while later
    photos decode; a batch whose call finds the gateway unreachable goes code by code to
    `judge` in this thread, which may queue them (and queues the rest from then on).
    Without `online` (offline or queueing), `judge` runs here for each code. `advance` is
    called once per file decoded (a progress bar)."""
    results: list[CodeResult] = []
    unreadable: list[dict[str, str]] = []
    pending: list[tuple[list[CodeResult], Future[list[CodeResult]] | None]] = []
    waiting: list[CodeResult] = []
    with ExitStack() as stack:
        if decoded is None:
            decoded = stack.enter_context(Decoder(workers)).decode(files)
        pool = stack.enter_context(ThreadPoolExecutor(threads))

        def send() -> None:
            if waiting:
                assert online is not None
                pending.append((list(waiting), pool.submit(online, list(waiting))))
                waiting.clear()

        for one in decoded:
            if advance is not None:
                advance()
            path = files[one.index]
            if one.error is not None:
                unreadable.append({"source": str(path), "error": one.error})
                continue
            for result in results_of(FileResult(path, one.codes)):
                if online is None:
                    pending.append(([judge(result)], None))
                    continue
                waiting.append(result)
                if len(waiting) >= batch:
                    send()
        send()
        for codes, future in pending:
            if future is not None:
                try:
                    codes = future.result()
                except GatewayUnreachable:
                    codes = [judge(result) for result in codes]
            results.extend(codes)
    return results, unreadable
