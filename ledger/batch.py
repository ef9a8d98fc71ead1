"""A batch of serials to enroll: reading it from CSV and validating every row.

A batch is one lot of one GTIN (as on a pharmaceutical pack or a production run). Every row
is checked before anything is computed or sent, and errors name the row, so a rights holder
can fix the file; nothing is half-enrolled because of a bad row 900,000.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ledger.errors import DuplicateSerial, InvalidBatchFile, InvalidInput
from ledger.gs1 import CSET82, MAX_SERIAL_LENGTH, normalize_gtin, validate_lot, validate_serial
from ledger.hashing import abi_encode_strings_and_words, keccak256

_SERIAL = re.compile("[" + re.escape("".join(sorted(CSET82))) + f"]{{1,{MAX_SERIAL_LENGTH}}}")
_EXPIRY = re.compile(r"[0-9]{2}(0[1-9]|1[0-2])(0[0-9]|[12][0-9]|3[01])")


def batch_id_of(gtin: str, lot: str) -> bytes:
    """`keccak256(abi.encode(gtin, lot))`, as the registry computes it."""
    return keccak256(abi_encode_strings_and_words([gtin, lot]))


def item_key_of(gtin: str, serial: str) -> bytes:
    """`keccak256(abi.encode(gtin, serial))`: the key the registry keeps item statuses under."""
    return keccak256(abi_encode_strings_and_words([gtin, serial]))


@dataclass(frozen=True)
class BatchInput:
    """A validated batch: GTIN-14, lot, distinct serials, optional expiry (YYMMDD)."""

    gtin: str
    lot: str
    serials: list[str] = field(repr=False)
    expiry: str | None = None

    @classmethod
    def create(
        cls, gtin: str, lot: str, serials: Iterable[str], expiry: str | None = None
    ) -> BatchInput:
        gtin = normalize_gtin(gtin)
        lot = validate_lot(lot)
        if expiry is not None and not _EXPIRY.fullmatch(expiry):
            raise InvalidInput(f"expiry {expiry!r} is not a GS1 date YYMMDD")
        values = list(serials)
        if not values:
            raise InvalidBatchFile("the batch has no serials")
        match = _SERIAL.fullmatch
        for row, serial in enumerate(values, start=1):
            if not isinstance(serial, str) or not match(serial):
                try:
                    validate_serial(serial)
                except InvalidInput as exc:
                    raise InvalidBatchFile(f"serial #{row}: {exc}") from None
        if len(set(values)) != len(values):
            seen: dict[str, int] = {}
            for row, serial in enumerate(values, start=1):
                if serial in seen:
                    raise DuplicateSerial(
                        f"serial {serial!r} appears twice in the batch (#{seen[serial]} and #{row})"
                    )
                seen[serial] = row
        return cls(gtin, lot, values, expiry)

    @property
    def batch_id(self) -> bytes:
        return batch_id_of(self.gtin, self.lot)

    def __len__(self) -> int:
        return len(self.serials)


def read_batch_csv(
    path: Path, gtin: str | None = None, lot: str | None = None, expiry: str | None = None
) -> BatchInput:
    """Read a CSV with a header row: a `serial` column, and `gtin` / `lot` / `expiry` columns
    or the same values given as arguments. A file may hold only one GTIN and lot."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InvalidBatchFile(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise InvalidBatchFile(
                f"{path} is empty; expected a header row with a 'serial' column"
            ) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidBatchFile(f"{path} is not UTF-8 CSV: {exc}") from None
        if "serial" not in header:
            raise InvalidBatchFile(f"{path} header {header!r} has no 'serial' column")
        col = {
            name: header.index(name)
            for name in ("serial", "gtin", "lot", "expiry")
            if name in header
        }
        constants = {"gtin": gtin, "lot": lot, "expiry": expiry}
        serials: list[str] = []
        s_col = col["serial"]
        try:
            for line, row in enumerate(reader, start=2):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(header):
                    raise InvalidBatchFile(
                        f"{path} line {line}: {len(row)} fields, header has {len(header)}"
                    )
                serials.append(row[s_col].strip())
                for name in ("gtin", "lot", "expiry"):
                    if name in col:
                        value = row[col[name]].strip()
                        if constants[name] is None:
                            constants[name] = value
                        elif constants[name] != value:
                            raise InvalidBatchFile(
                                f"{path} line {line}: {name} {value!r} differs from {constants[name]!r};"
                                " a batch is one lot of one GTIN"
                            )
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidBatchFile(f"{path} is not UTF-8 CSV: {exc}") from None
    if constants["gtin"] is None or constants["lot"] is None:
        raise InvalidBatchFile(f"{path}: give the GTIN and lot as columns or as --gtin / --lot")
    return BatchInput.create(
        constants["gtin"], constants["lot"], serials, constants["expiry"] or None
    )
