"""A process that decodes keeps the memory a pass frees (scanner/allocator.py), observed
through glibc's own accounting in fresh processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Prints how many bytes glibc holds in blocks mapped on their own (mallinfo2's hblkhd)
#: while an 8 MB array is alive, after running the SETUP lines.
PROBE = """
import ctypes, json, sys
sys.path.insert(0, {root!r})
{setup}
import numpy as np

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
block = np.ones(8 * 2**20, np.uint8)
print(json.dumps({{"mapped": libc.mallinfo2().hblkhd, "applied": applied}}))
"""

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="mallopt is glibc's")


def _mapped(setup: str) -> dict[str, int]:
    code = PROBE.format(root=str(ROOT), setup=setup)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_by_default_an_array_of_megabytes_is_mapped_on_its_own() -> None:
    """The control: glibc maps an 8 MB block from the kernel (and unmaps it when freed)."""
    assert _mapped("applied = False")["mapped"] >= 8 * 2**20


def test_kept_freed_memory_a_block_of_megabytes_comes_from_the_heap() -> None:
    found = _mapped(
        "from scanner.allocator import keep_freed_memory\napplied = keep_freed_memory()"
    )
    assert found["applied"] and found["mapped"] < 8 * 2**20


def test_a_process_that_decodes_keeps_freed_memory() -> None:
    """Decoding a photo sets the allocator first (`machine_pace`), in a folder's workers and
    in a process decoding a photo or two alike, so the budget's pace is timed as decoding
    runs."""
    found = _mapped(
        "from scanner.decode import decode_image_bytes\n"
        "from scanner.damage import synth_photo\n"
        "photo = synth_photo([('HELLO', 'qr', None)], 'rotation', 'mild', 1)\n"
        "applied = [c.text for c in decode_image_bytes(photo.jpeg)] == ['HELLO']"
    )
    assert found["applied"] and found["mapped"] < 8 * 2**20
