"""Tables of product identification guides (docs/guides.md): the guide (its current
version and, apart, the version officers read: the last published one), every version and
workflow step (the edit history), and the photos.

Kept apart from `api.models` for size; `api.models` imports this module at its end."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import JSON, Field, SQLModel

from api.models import BIG_ID, utcnow


class Guide(SQLModel, table=True):
    """One product's guide. `content` is the current version (a draft while edited);
    `published` the content officers read, with its version and expiry, null until a
    customs agency first publishes it. Search columns (`brand_key`, `name_key`: lower-cased)
    are kept with every version, and those of the published content beside them."""

    __tablename__ = "guides"
    __table_args__ = (
        UniqueConstraint("holder_id", "product", name="uq_guides_holder_product"),
        # covering every search filter: a substring search scans this index, not the rows
        Index(
            "ix_guides_search",
            "published_version",
            "published_expires",
            "holder_id",
            "state",
            "product",
            "company_prefix",
            "gtin",
            "brand_key",
            "name_key",
            "published_brand_key",
            "published_name_key",
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    guide_id: str = Field(unique=True, index=True, max_length=36)
    holder_id: int = Field(foreign_key="organizations.id", index=True)
    #: the GTIN, or "prefix:" and the company prefix
    product: str = Field(index=True, max_length=24)
    gtin: str | None = Field(default=None, index=True, max_length=14)
    company_prefix: str | None = Field(default=None, index=True, max_length=12)
    brand_key: str = Field(max_length=200)
    name_key: str = Field(max_length=200)
    category: str = Field(max_length=40)
    state: str = Field(index=True, max_length=16)
    version: int = 1
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    expires: date | None = None
    published_version: int | None = None
    published_content: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    published_expires: date | None = None
    #: the published content's search columns: officers search what they read, so a draft
    #: that renames the product does not move the published guide under the new name
    published_brand_key: str | None = Field(default=None, max_length=200)
    published_name_key: str | None = Field(default=None, max_length=200)
    published_at: datetime | None = None
    published_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class GuideEvent(SQLModel, table=True):
    """The edit history: each version written (with what changed) and each workflow step,
    who took it and when. A version's full content is kept, so any version can be shown."""

    __tablename__ = "guide_events"

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    guide_pk: int = Field(foreign_key="guides.id", index=True)
    version: int
    action: str = Field(
        max_length=16
    )  # create | update | submit | review | publish | reject | photo
    state: str = Field(max_length=16)
    actor: str = Field(max_length=200)
    organization_id: int = Field(foreign_key="organizations.id")
    at: datetime = Field(default_factory=utcnow)
    note: str = Field(default="", max_length=2000)
    changes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    content: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class GuidePhoto(SQLModel, table=True):
    """A photo of the genuine product or of a known fake, re-encoded without metadata; its
    bytes in `data`, or in the configured directory under `sha256` (`Settings.guide_photo_dir`).
    `version` is the guide version that added it: a photo is part of the guide that customs
    reviews, so officers see it only once a version at least that new is published."""

    __tablename__ = "guide_photos"

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    photo_id: str = Field(unique=True, index=True, max_length=36)
    guide_pk: int = Field(foreign_key="guides.id", index=True)
    kind: str = Field(max_length=8)  # genuine | fake
    caption: str = Field(default="", max_length=200)
    mime: str = Field(max_length=16)
    width: int
    height: int
    size: int
    sha256: str = Field(max_length=64)
    version: int = 1
    data: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    created_at: datetime = Field(default_factory=utcnow)
