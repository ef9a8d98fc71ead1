"""GS1 Lightweight Messaging Standard for verification of product identifiers (placeholder
wiring; see api/gs1.py)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/gs1", tags=["gs1"])
