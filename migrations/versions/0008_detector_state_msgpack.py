"""detector state: marshal -> msgpack

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06 00:40:00

`detector_items.state` held `marshal` bytes (CPython-version dependent, unsafe to load when
crafted). This rewrites every row in the documented msgpack layout (docs/detector.md, "Stored
state"), in key order, a page at a time, so memory stays flat on a large table. A row that is
already msgpack (a fixarray tag, 0x90-0x9f, which no marshal tuple starts with) is left as is,
so the step can run again after an interruption. The layouts are spelled out here rather than
imported, so later code changes cannot change what this migration writes.

Downgrade writes marshal again (for a rollback to the code before this revision).
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Sequence
from typing import Any

import msgpack
import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = 2_000
ITEM_LAYOUT = 1
PROBE_LAYOUT = 2
_items = sa.table("detector_items", sa.column("key", sa.String), sa.column("state", sa.LargeBinary))


def _is_msgpack(blob: bytes) -> bool:
    return bool(blob) and 0x90 <= blob[0] <= 0x9F


def _to_msgpack(key: str, blob: bytes) -> bytes | None:
    if _is_msgpack(blob):
        return None
    fields = marshal.loads(blob)  # rows written by this gateway's own earlier code
    if key.startswith("probe:"):
        entries, quiet_until = fields
        packed = [PROBE_LAYOUT, list(entries), quiet_until]
    else:
        batch_id, sightings, places, markets, status, fired = fields[:6]
        applied = fields[6] if len(fields) > 6 else {}
        packed = [ITEM_LAYOUT, batch_id, sightings, places, markets, status, fired, applied]
    data: bytes = msgpack.packb(packed, use_bin_type=True)
    return data


def _to_marshal(key: str, blob: bytes) -> bytes | None:
    if not _is_msgpack(blob):
        return None
    fields = msgpack.unpackb(blob, use_list=False, raw=False, strict_map_key=True)
    if key.startswith("probe:"):
        return marshal.dumps((list(fields[1]), fields[2]))
    _, batch_id, sightings, places, markets, status, fired, applied = fields
    return marshal.dumps((batch_id, list(sightings), places, list(markets), status, fired, applied))


def _rewrite(convert: Callable[[str, bytes], bytes | None]) -> None:
    connection = op.get_bind()
    after = ""
    while True:
        rows: list[Any] = list(
            connection.execute(
                sa.select(_items.c.key, _items.c.state)
                .where(_items.c.key > after)
                .order_by(_items.c.key)
                .limit(PAGE)
            )
        )
        if not rows:
            return
        changed = []
        for key, state in rows:
            new = convert(str(key), bytes(state))
            if new is not None:
                changed.append({"k": key, "s": new})
        if changed:
            connection.execute(
                sa.update(_items)
                .where(_items.c.key == sa.bindparam("k"))
                .values(state=sa.bindparam("s")),
                changed,
            )
        after = str(rows[-1][0])


def upgrade() -> None:
    _rewrite(_to_msgpack)


def downgrade() -> None:
    _rewrite(_to_marshal)
