"""The rights holder of a GTIN as the index knows it, by the registry's rule: a GTIN bound on
its own wins, else the longest bound GS1 company prefix it falls under.

The registry decides at registration (`resolveGtinHolder`); the gateway asks here first so
that an enrollment another holder's binding would refuse on chain is refused before anything
is queued, naming who holds the GTIN and through which binding."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from api.models import IndexedGtinBinding, IndexedPrefixBinding
from ledger.gs1 import company_prefixes_of, resolve_holder


@dataclass(frozen=True, slots=True)
class BoundHolder:
    holder: str
    #: the company prefix that decided; None when the GTIN is bound on its own
    prefix: str | None

    def refusal(self, gtin: str) -> str:
        """The message refusing `gtin` to anyone but `holder`: who holds it and through what."""
        if self.prefix is None:
            return f"GTIN {gtin} is bound to another rights holder ({self.holder})"
        return (
            f"GTIN {gtin} falls under company prefix {self.prefix}, "
            f"bound to another rights holder ({self.holder})"
        )


def bound_holder(session: Session, gtin: str) -> BoundHolder | None:
    """Who holds the GTIN-14 `gtin` in the index now (two indexed lookups), or None."""
    own = session.get(IndexedGtinBinding, gtin)
    if own is not None:
        return BoundHolder(own.holder, None)
    if len(gtin) != 14:
        return None
    rows = session.exec(
        select(IndexedPrefixBinding).where(
            col(IndexedPrefixBinding.prefix).in_(company_prefixes_of(gtin))
        )
    ).all()
    holder, prefix = resolve_holder(gtin, {}, {r.prefix: r.holder for r in rows})
    return BoundHolder(holder, prefix) if holder is not None else None
