"""Console entry point, kept import-light so Ctrl-C during start-up exits quietly (130)
instead of printing a traceback from the middle of importing web3."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        if sys.argv[1:2] == ["scan"]:
            from borderledger.run import scan_main as cli_main
        else:
            from borderledger.cli import main as cli_main
    except KeyboardInterrupt:
        sys.exit(130)
    cli_main()
