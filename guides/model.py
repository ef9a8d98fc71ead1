"""A guide's content: one product (a GTIN, or all GTINs under a GS1 company prefix) as a
rights holder describes it to customs — CBP's product-ID guides and the EU application for
action (boxes 12 to 19) ask for the same things (docs/guides.md).

Field names are snake_case here and camelCase on the API (`alias_generator`). Every check is
made here, once, so a guide read back from storage can be trusted."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ledger.errors import InvalidGtin
from ledger.gs1 import normalize_gtin

#: CBP's product categories (its annual IPR statistics, cases.md section 6) → (label, the EU
#: customs IPR report's category). The codes are the case lines' categories.
CATEGORIES: dict[str, tuple[str, str]] = {
    "apparel_accessories": ("Apparel/Accessories", "Clothing and accessories"),
    "watches_jewelry": ("Watches/Jewelry", "Watches; Jewellery"),
    "handbags_wallets": ("Handbags/Wallets", "Bags, including handbags, wallets"),
    "consumer_electronics": (
        "Consumer Electronics",
        "Electrical/electronic and computer equipment",
    ),
    "pharmaceuticals_personal_care": (
        "Pharmaceuticals/Personal Care",
        "Medicines; Personal care products",
    ),
    "footwear": ("Footwear", "Footwear"),
    "consumer_products": ("Consumer Products", "Other goods"),
    "toys": ("Toys", "Toys"),
    "computers_accessories": (
        "Computers/Accessories",
        "Electrical/electronic and computer equipment",
    ),
    "labels_tags": ("Labels/Tags", "Packaging material; Labels, tags and stickers"),
    "optical_media": ("Optical Media", "CDs, DVDs, cassettes, games"),
    "automotive_aerospace": ("Automotive/Aerospace", "Vehicles, including accessories and parts"),
    "sporting_goods": ("Sporting Goods", "Sports articles"),
    "other": ("All Others", "Other goods"),
}

CONFIDENTIALITY = (
    "CONFIDENTIAL — provided by the rights holder to customs authorities for the enforcement "
    "of its intellectual property rights only. Not to be disclosed to importers or third "
    "parties."
)

FeatureKind = Literal["packaging", "label", "hologram", "font", "serial_format", "other"]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
_LOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")


def _country(value: str) -> str:
    code = value.strip().upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"unknown country {value!r} (ISO 3166-1 alpha-2, e.g. FR)")
    return code


def _currency(value: str) -> str:
    code = value.strip().upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"unknown currency {value!r} (ISO 4217, e.g. EUR)")
    return code


def _locode(value: str) -> str:
    code = value.strip().upper().replace(" ", "")
    if not _LOCODE.fullmatch(code):
        raise ValueError(f"{value!r} is not a UN/LOCODE (5 characters, e.g. NLRTM)")
    return code


def _gtin(value: str) -> str:
    try:
        return normalize_gtin(value.strip())
    except InvalidGtin as exc:
        raise ValueError(str(exc)) from None


def _prefix(value: str) -> str:
    if not re.fullmatch(r"[0-9]{6,12}", value.strip()):
        raise ValueError(f"company prefix {value!r} must be 6 to 12 digits")
    return value.strip()


Country = Annotated[str, AfterValidator(_country)]
Currency = Annotated[str, AfterValidator(_currency)]
Locode = Annotated[str, AfterValidator(_locode)]


class _Part(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Feature(_Part):
    """An authentication feature: what to look at on the product and how the genuine one is."""

    kind: FeatureKind
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)
    ]


class Party(_Part):
    """A factory, importer or distributor the rights holder authorises, and its country."""

    name: Text
    country: Country
    role: Literal["factory", "importer", "distributor", "licensee"] = "factory"


class Contact(_Part):
    """Someone customs reaches fast: legal (the right, the case) or technical (the product)."""

    kind: Literal["legal", "technical"]
    name: Text
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=200)]
    phone: Annotated[str, StringConstraints(pattern=r"^[+0-9 ()./-]{0,40}$")] = ""


class Recordation(_Part):
    """A CBP recordation or an EU application for action: the guide lives as long as they do."""

    kind: Literal["cbp_recordation", "eu_afa", "national_afa", "other"]
    number: Text
    expires: date


class GuideContent(_Part):
    """Everything a guide says about one product. Exactly one of `gtin` and `company_prefix`."""

    gtin: Annotated[str, AfterValidator(_gtin)] | None = None
    company_prefix: Annotated[str, AfterValidator(_prefix)] | None = None
    brand: Text
    name: Text
    category: Annotated[str, AfterValidator(lambda c: _category(c))]
    description: LongText = ""
    features: list[Feature] = Field(default_factory=list, max_length=50)
    msrp_cents: int | None = Field(None, ge=0, le=10**12)
    currency: Currency = "USD"
    factories: list[Party] = Field(default_factory=list, max_length=100)
    licensees: list[Text] = Field(default_factory=list, max_length=100)
    importers: list[Party] = Field(default_factory=list, max_length=200)
    markets: list[Country] = Field(default_factory=list, max_length=250)
    routes: list[Locode] = Field(default_factory=list, max_length=100)
    contacts: list[Contact] = Field(default_factory=list, max_length=20)
    recordations: list[Recordation] = Field(default_factory=list, max_length=20)
    known_infringers: list[Text] = Field(default_factory=list, max_length=100)
    confidentiality: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = (
        CONFIDENTIALITY
    )

    @model_validator(mode="after")
    def _one_product(self) -> GuideContent:
        if (self.gtin is None) == (self.company_prefix is None):
            raise ValueError("give exactly one of gtin and companyPrefix")
        return self

    @property
    def product_key(self) -> str:
        """The product the guide is about: its GTIN, or `prefix:` and the company prefix."""
        return self.gtin if self.gtin is not None else f"prefix:{self.company_prefix}"

    @property
    def expires(self) -> date | None:
        """The guide expires with its recordation: the earliest expiry of those it cites."""
        return min((r.expires for r in self.recordations), default=None)

    @property
    def category_labels(self) -> tuple[str, str]:
        """(CBP's label, the EU's category) of the guide's category."""
        return CATEGORIES[self.category]

    def route_policy(self) -> dict[str, list[str]] | None:
        """The default route policy of new batches of the product (api.detection format):
        authorised markets, the usual route's customs offices, the authorised importers and
        distributors as consignees. None when the guide names no market (no policy)."""
        if not self.markets:
            return None
        policy: dict[str, list[str]] = {"markets": sorted(set(self.markets))}
        if self.routes:
            policy["nodes"] = list(dict.fromkeys(self.routes))
        consignees = sorted(
            {p.name for p in self.importers if p.role in ("importer", "distributor")}
        )
        if consignees:
            policy["consignees"] = consignees
        return policy

    def essentials(self) -> dict[str, object]:
        """What an officer reads with a verdict: name, category, the key features, MSRP."""
        return {
            "brand": self.brand,
            "name": self.name,
            "category": self.category,
            "categoryLabel": CATEGORIES[self.category][0],
            "features": [f.model_dump(by_alias=True) for f in self.features[:5]],
            "msrp": None
            if self.msrp_cents is None
            else {"cents": self.msrp_cents, "currency": self.currency},
        }

    def api(self) -> dict[str, object]:
        """The content as the API shows it (camelCase, JSON types)."""
        return self.model_dump(mode="json", by_alias=True)


def _category(value: str) -> str:
    code = value.strip().lower()
    if code not in CATEGORIES:
        raise ValueError(f"unknown category {value!r}; one of {', '.join(CATEGORIES)}")
    return code


def matches(guide_product: str, gtin: str) -> bool:
    """Whether a guide about `guide_product` (a GTIN or `prefix:<digits>`) covers `gtin`.
    A company prefix is matched against the GTIN-13 inside the GTIN-14 (after the indicator
    digit), as GS1 allocates it."""
    if guide_product.startswith("prefix:"):
        return gtin[1:].startswith(guide_product[len("prefix:") :])
    return guide_product == gtin
