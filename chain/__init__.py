"""Chain access: the registry's typed client (`contract`), transactions signed once and
re-broadcast on retry (`tx`), local development nodes (`node`), encrypted keystores
(`keystore`), enrollment onto the chain (`enroll`), checking a tag with the registry's views
(`check`), the chain-only walkthrough (`demo`) and their commands (`cli`).

Above the core (`ledger`), below everything that uses a chain (detector, custody, gateway,
scanner, benchmarks); the only package besides those that imports web3.
"""
