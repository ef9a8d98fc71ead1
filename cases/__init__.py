"""Customs cases: what happens after a verdict (docs/cases.md).

A domain package (no web framework, chain or database): jurisdiction profiles as data
(`cases.profiles`, `data/profiles/*.toml`), working-day calendars and deadlines
(`cases.calendar`), the state machine (`cases.machine`), staged disclosure
(`cases.disclosure`), seizure statistics dimensions (`cases.statistics`) and a simulator of
a year of seizures (`cases.simulate`). The gateway stores and serves cases (`api.cases`).
"""
