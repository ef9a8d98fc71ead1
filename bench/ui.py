"""`borderledger bench ui`: the officer's app in a real chromium, with a fake camera.

1. Anvil, a deployed registry and a gateway (the test stack, `tests.stack`), a rights holder
   with one batch of `labels` signed tags, a customs agency with an officer; the gateway
   served by uvicorn on a loopback port.
2. Debian's chromium (Playwright, `executable_path`) started with Chromium's fake capture
   device reading a Y4M video file (`--use-file-for-fake-video-capture`); before each scan the
   file is rewritten with the next label (a QR code of the signed tag, made here).
3. Sign-in → scan page ready: from pressing "Sign in" to the Scan page's module loaded
   (`window.__scanReady`), once (Argon2 dominates it).
4. Per label: from pressing "Scan with camera" to the verdict painted (the page records both
   in `window.__scanTimings`: the press, and the frame after htmx settled the verdict);
   p50 and p95 over the labels, every verdict checked GENUINE.

The JSON is open for more sections: each function in `SECTIONS` is called with the running
bench (`UiRun`: the page, the gateway URL, the tags) and its dict added under its key; the
offline verdict (PWA) adds `offline` there."""

from __future__ import annotations

import io
import math
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ledger.config import PROJECT_ROOT
from ledger.qr import render_png

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 640, 480
TARGETS = {"scan_to_verdict_p95_ms_max": 800, "sign_in_to_scan_ready_ms_max": 1000}


def label_image(tag: str, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A label as the camera sees it: the tag's QR code (as printed, `ledger.qr`) centred on a
    light grey card, 8-bit luma `height` x `width`."""
    code = Image.open(io.BytesIO(render_png(tag, box_size=4))).convert("L")
    side = min(width, height) - 40
    code = code.resize((side, side), Image.Resampling.NEAREST)
    card = Image.new("L", (width, height), 235)
    card.paste(code, ((width - side) // 2, (height - side) // 2))
    return np.asarray(card, dtype=np.uint8)


def write_y4m(path: Path, luma: np.ndarray, frames: int = 10, fps: int = 15) -> None:
    """A Y4M video (4:2:0, the format Chromium's fake capture device reads) showing `luma`
    for `frames` frames; chroma neutral (grey). Written beside and renamed, so a capture
    starting meanwhile never reads half a file."""
    height, width = luma.shape
    if width % 2 or height % 2:
        raise ValueError("Y4M 4:2:0 needs even width and height")
    chroma = np.full((height // 2) * (width // 2), 128, dtype=np.uint8).tobytes()
    frame = b"FRAME\n" + luma.tobytes() + chroma + chroma
    header = f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
    partial = path.with_suffix(".part")
    partial.write_bytes(header + frame * frames)
    partial.replace(path)


def camera_args(video: Path) -> list[str]:
    """Chromium flags for a fake camera showing `video` and no permission prompt."""
    return [
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
        "--use-fake-ui-for-media-stream",
    ]


@dataclass
class UiRun:
    """What a section of the bench gets: the signed-in page, the gateway's URL, the tags."""

    page: Any
    url: str
    tags: list[str]
    video: Path
    #: The test stack (`tests.stack.Stack`) and its holder's and agency's API keys: sections
    #: that need more data (the auditor's timeline) add it through them.
    stack: Any = None
    holder_key: str = ""
    customs_key: str = ""
    timeline_entries: int = 100
    #: serve the timeline page from the bench's own process (the old way), not its own one
    timeline_in_process: bool = False


#: More sections of the JSON: name → function of the running bench (the offline verdict adds
#: one). Each returns a dict.
SECTIONS: dict[str, Callable[[UiRun], dict[str, Any]]] = {}


def _offline_section(run: UiRun) -> dict[str, Any]:
    """The offline verdict in the browser over the same labels (bench/ui_offline.py)."""
    from bench.ui_offline import measure_offline

    return measure_offline(run.page, [{"tag": tag} for tag in run.tags])


SECTIONS["offline"] = _offline_section


def _timeline_section(run: UiRun) -> dict[str, Any]:
    """The auditor's timeline page: 100 entries, proofs checked in the browser
    (bench/ui_timeline.py)."""
    from bench.ui_timeline import measure_timeline

    return measure_timeline(
        run.stack,
        run.url,
        run.page.context.browser,
        run.holder_key,
        run.customs_key,
        entries=run.timeline_entries,
        in_process=run.timeline_in_process,
    )


SECTIONS["timeline"] = _timeline_section


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return round(ordered[rank], 1)


def scan_by_camera(page: Any, video: Path, tag: str) -> float:
    """Show `tag` to the fake camera, press "Scan with camera", wait for the verdict; the
    page's own measure (press → verdict painted), ms."""
    write_y4m(video, label_image(tag))
    before = page.evaluate("() => window.__scanTimings.length")
    page.get_by_role("button", name="Scan with camera").click()
    page.wait_for_function(f"() => window.__scanTimings.length > {before}", timeout=30_000)
    took: float = page.evaluate("() => window.__scanTimings[window.__scanTimings.length - 1]")
    return took


@contextmanager
def _served(app: Any) -> Iterator[str]:
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def run_ui_bench(
    labels: int = 50, timeline_entries: int = 100, timeline_in_process: bool = False
) -> dict[str, Any]:
    # The test stack (deploy, gateway, organizations) is the tests' own helper: the bench
    # reuses it rather than keep a second copy of that set-up.
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    from playwright.sync_api import sync_playwright

    from api.main import create_app
    from chain.node import LocalNode
    from tests.people import PASSWORD, make_user
    from tests.stack import running_stack

    with (
        tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp,
        LocalNode("anvil") as node,
    ):
        home = Path(tmp)
        database = (f"sqlite:///{home / 'gateway.db'}", None)
        # the agency anchors the custody log's checkpoints (the timeline section's proofs)
        with running_stack(node, database, home, anchor_organization="Customs NL") as stack:
            stack.gateway.settings.login_failure_delay = 0.0
            holder = stack.org("Acme", "rights_holder")
            serials = [f"UI{i:04d}" for i in range(labels + 1)]  # one to warm up
            batch = stack.enroll(holder["apiKey"], serials=serials)
            stack.sync()
            tags = [t["uri"] for t in stack.tags(holder["apiKey"], batch["batchId"])]
            customs = stack.org("Customs NL", "customs")
            make_user(stack, customs["apiKey"], "bench@customs.example", "officer")
            app = create_app(stack.gateway, background=False, stop_gateway=False)
            video = home / "label.y4m"
            write_y4m(video, label_image(tags[0]))
            with _served(app) as url, sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--headless", "--disable-gpu", *camera_args(video)],
                )
                try:
                    context = browser.new_context(
                        viewport={"width": 390, "height": 844}, permissions=["camera"]
                    )
                    page = context.new_page()
                    page.goto(url + "/login")
                    page.get_by_label("Email").fill("bench@customs.example")
                    page.get_by_label("Password").fill(PASSWORD)
                    start = time.perf_counter()
                    page.get_by_role("button", name="Sign in").click()
                    page.wait_for_url(url + "/")
                    page.goto(url + "/scan")
                    page.wait_for_function("() => window.__scanReady === true")
                    ready_ms = (time.perf_counter() - start) * 1000
                    page.get_by_label("Port (UN/LOCODE, optional)").fill("NLRTM")
                    # The first scan loads the decoder (wasm): measured apart, not in p50/p95.
                    first_ms = scan_by_camera(page, video, tags[0])
                    timings = []
                    for tag in tags[1:]:
                        took = scan_by_camera(page, video, tag)
                        verdict = page.locator("#verdict .verdict").get_attribute("data-verdict")
                        if verdict != "GENUINE":
                            raise RuntimeError(f"{tag}: verdict {verdict}, not GENUINE")
                        timings.append(took)
                    result: dict[str, Any] = {
                        "bench": "ui",
                        "labels": len(timings),
                        "scan_to_verdict_ms": {
                            "p50": percentile(timings, 50),
                            "p95": percentile(timings, 95),
                            "max": round(max(timings), 1),
                            "first_with_decoder_load": round(first_ms, 1),
                        },
                        "sign_in_to_scan_ready_ms": round(ready_ms, 1),
                        "targets": TARGETS,
                    }
                    run = UiRun(
                        page,
                        url,
                        tags,
                        video,
                        stack,
                        holder["apiKey"],
                        customs["apiKey"],
                        timeline_entries,
                        timeline_in_process,
                    )
                    for name, section in SECTIONS.items():
                        result[name] = section(run)
                finally:
                    browser.close()
    result["met"] = {
        "scan_to_verdict_p95": result["scan_to_verdict_ms"]["p95"]
        <= TARGETS["scan_to_verdict_p95_ms_max"],
        "sign_in_to_scan_ready": result["sign_in_to_scan_ready_ms"]
        <= TARGETS["sign_in_to_scan_ready_ms_max"],
        "offline_verdict_p95": bool(
            result.get("offline", {}).get("offline_verdict_ms", {}).get("meets_target")
        ),
        "timeline_first_paint_and_proofs_p95": bool(result.get("timeline", {}).get("meets_target")),
    }
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return result
