"""Officer-side scanning: read tags from images (zxing-cpp) and judge them.

Issue 6 grows this into the full scanner; today it decodes QR codes from images, which the
ledger's tests use to prove that printed tags read back.
"""

from scanner.decode import DecodedCode, decode_image, decode_image_bytes

__all__ = ["DecodedCode", "decode_image", "decode_image_bytes"]
