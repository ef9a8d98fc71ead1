"""Migration 0008 rewrites detector state stored with `marshal` by the earlier code (rows
committed as it wrote them) into the msgpack layout, and the detector carries on from it."""

from __future__ import annotations

import json
import marshal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select

from api.db import make_engine
from api.detection import STATE_TABLES
from api.migrate import alembic_config, upgrade
from detector.dbstore import DbStore
from detector.events import Scan
from detector.rules import AlertReason
from detector.store import ItemState, ProbeWindow, StoredStateError
from tests.detector.test_rules import GTIN, T0, D, H, make, reasons, scan

OLD = json.loads((Path(__file__).parent / "fixtures" / "marshal_state_rows.json").read_text())


def _before_0008() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_revision("0008")
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


def _old_fields(row: dict[str, Any]) -> tuple[Any, ...]:
    fields: tuple[Any, ...] = marshal.loads(bytes.fromhex(row["state"]))
    return fields


def _stored(engine: Any) -> dict[str, bytes]:
    t = STATE_TABLES.items
    with engine.connect() as connection:
        return {str(k): bytes(s) for k, s in connection.execute(select(t.c.key, t.c.state))}


def test_marshal_rows_are_rewritten_and_the_detector_carries_on(
    database: tuple[str, str | None],
) -> None:
    url, schema = database
    engine = make_engine(url, schema)
    try:
        upgrade(engine, _before_0008())
        with engine.begin() as connection:
            rows = [{**r, "state": bytes.fromhex(r["state"])} for r in OLD["items"]]
            connection.execute(insert(STATE_TABLES.items), rows)
            for table, name in (
                (STATE_TABLES.volume, "volume"),
                (STATE_TABLES.batch_status, "batch_statuses"),
            ):
                if OLD[name]:
                    connection.execute(insert(table), OLD[name])
        with pytest.raises(StoredStateError, match="not msgpack"):
            ItemState.loads(_stored(engine)["09506000134352/S1"])
        upgrade(engine)
        stored = _stored(engine)
        assert set(stored) == {r["key"] for r in OLD["items"]}
        for row in OLD["items"]:
            blob = stored[row["key"]]
            assert 0x90 <= blob[0] <= 0x9F  # a msgpack array: nothing left in marshal
            old = _old_fields(row)
            if row["key"].startswith("probe:"):
                window = ProbeWindow.loads(blob)
                assert (window.entries, window.quiet_until) == (old[0], old[1])
                assert len(window.entries) == 5
                continue
            st = ItemState.loads(blob)
            assert (st.batch_id, st.sightings, st.places, st.markets, st.status) == old[:5]
            assert (st.fired_places, st.applied) == (old[5], old[6])
        upgrade(engine)  # a second run changes nothing
        assert _stored(engine) == stored

        # The detector goes on from the migrated state: S1 was seen in Rotterdam at day 30.
        det = make(DbStore(engine, STATE_TABLES))
        assert AlertReason.CLONE_IMPOSSIBLE_TRAVEL in reasons(
            det.ingest(scan("x", "CNSHA", 30 * D + 2 * H))
        )
        assert det.ingest(scan("i", "NLRTM", 30 * D)) == []  # a re-delivery stays ignored
        # S3 was reported stolen before its sighting; five unknown serials were read at NLRTM.
        assert AlertReason.STOLEN_SEEN in reasons(
            det.ingest(scan("c2", "NLRTM", 7 * D, serial="S3"))
        )
        found = []
        for k in range(5, 20):
            found += det.ingest(Scan(f"p{k}", GTIN, f"G{k}", "NLRTM", T0 + k * 60.0))
        probe = [al for al in found if al.reason is AlertReason.PROBING_UNKNOWN_SERIALS]
        assert len(probe) == 1 and len(probe[0].evidence) == 20

        # Downgrade writes marshal again, with the same contents.
        before = {k: ItemState.loads(v) for k, v in _stored(engine).items() if "probe" not in k}
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, _before_0008())
        for key, blob in _stored(engine).items():
            fields = marshal.loads(blob)
            if key in before:
                assert fields[0] == before[key].batch_id
                assert list(fields[1]) == before[key].sightings
    finally:
        engine.dispose()
