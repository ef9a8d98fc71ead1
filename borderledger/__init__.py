"""The `borderledger` command line: the composition root above every other package.

`borderledger.cli` builds one Typer application from the commands each package offers
(`chain.cli`, `api.cli`, `scanner.*_cli`, `custody.cli`, `bench.cli`) and maps domain errors to
exit codes in one place. Nothing below imports this package.
"""
