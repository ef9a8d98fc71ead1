"""Officer-side scanning: read tags from photos of labels (zxing-cpp) and judge them.

* `scanner.decode`: robust decoding of photos (fallback passes), files and folders;
* `scanner.payload`: what a decoded code is (signed tag, GS1 element string, foreign);
* `scanner.online`: verdicts from the gateway (POST /v1/verify);
* `scanner.cli`: `borderledger scan`;
* `scanner.damage`: synthetic damaged label photos for tests and `borderledger bench scan`.
"""

from scanner.decode import DecodedCode, decode_file, decode_image, decode_image_bytes
from scanner.payload import Payload, classify, parse_element_string

__all__ = [
    "DecodedCode",
    "Payload",
    "classify",
    "decode_file",
    "decode_image",
    "decode_image_bytes",
    "parse_element_string",
]
