"""All settings, from environment variables (prefix `BORDERLEDGER_`) or a `.env` file.

One class, so every knob is in one place with its default. Defaults are the embedded
development setup: a local chain started for the user, files under `.borderledger/`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.errors import InvalidInput
from ledger.webhooks import parse_allowlist

#: Route classes the gateway's rate limits are set for (api/ratelimit.py, docs/limits.md).
ROUTE_CLASSES = ("verify", "enroll", "capture", "sync", "reads", "writes")

#: Per API key (later: per signed-in person), in the `limits` notation ("N/second;M/minute",
#: every part must hold). Sized for the heaviest legitimate caller of each class (docs/limits.md).
DEFAULT_RATE_LIMITS = {
    "verify": "50/second",  # one window: the hot path pays for each (docs/limits.md)
    "enroll": "5/second;120/minute",
    "capture": "20/second;600/minute",
    "sync": "10/second;120/minute",
    "reads": "30/second;1200/minute",
    "writes": "5/second;120/minute",
}
#: Per client address: several keys (officers of one post behind one NAT) add up here.
DEFAULT_RATE_LIMITS_PER_ADDRESS = {
    "verify": "200/second",
    "enroll": "20/second;480/minute",
    "capture": "50/second;2000/minute",
    "sync": "40/second;600/minute",
    "reads": "100/second;4000/minute",
    "writes": "20/second;480/minute",
}


def _limits_by_class(value: object, defaults: dict[str, str]) -> dict[str, str]:
    """A partial mapping (say only `{"verify": "..."}`) on top of the defaults; an unknown
    class or an empty limit is refused at startup, not at the first request."""
    if not isinstance(value, dict):
        raise ValueError("rate limits are a JSON object: route class -> limit, e.g. 10/second")
    unknown = set(value) - set(ROUTE_CLASSES)
    if unknown:
        raise ValueError(f"unknown route classes {sorted(unknown)}; known: {list(ROUTE_CLASSES)}")
    merged = {**defaults, **{str(k): str(v) for k, v in value.items()}}
    for cls, limit in merged.items():
        if not re.fullmatch(r"\s*\d+\s*(/|per)\s*.+", limit.split(";")[0]):
            raise ValueError(f"rate limit of {cls!r} is not like '10/second': {limit!r}")
    return merged


#: The checkout this package lives in: node binaries and compiled contracts are found here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class PreviousRegistry(BaseModel):
    """A registry an upgrade replaced (`deployment.json` `previous[]`): its batches registered
    up to `retired_at_block` still verify; later registrations there are not followed."""

    registry: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    retired_at_block: int = Field(ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BORDERLEDGER_", env_file=".env", extra="ignore")

    rpc_url: str = Field("http://127.0.0.1:8545", description="JSON-RPC endpoint of the chain")
    registry: str | None = Field(None, description="registry contract address")
    home: Path = Field(Path(".borderledger"), description="keystores, deployments, outputs")
    keystore_password: str | None = Field(
        None, description="password of the keystore files (prompted for when unset)"
    )
    keystore_scrypt_n: int = Field(
        2**16, description="scrypt cost of new keystores; 2**18 is eth-account's default"
    )
    resolver_host: str = Field(
        "id.borderledger.example", description="host printed in tag URIs (verifiers ignore it)"
    )
    node_bin_dir: Path = Field(PROJECT_ROOT / "node_modules" / ".bin")
    artifacts_dir: Path = Field(PROJECT_ROOT / "artifacts")
    receipt_timeout: float = Field(120.0, description="seconds to wait for a receipt")
    rpc_retries: int = Field(6, description="attempts for an RPC call before giving up")
    rpc_backoff: float = Field(0.25, description="first retry delay in seconds, doubled each time")

    # --- gateway -------------------------------------------------------------------------
    environment: Literal["dev", "production"] = Field(
        "dev", description="production refuses dev secrets"
    )
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "BORDERLEDGER_DATABASE_URL"),
        description="SQLAlchemy URL; default: SQLite file <home>/gateway.db (WAL)",
    )
    secret_key: str = Field(
        "dev-only-secret-key-change-me",
        description="encrypts batch secrets and organization keystore passwords at rest",
    )
    gateway_host: str = Field("127.0.0.1")
    gateway_port: int = Field(8000)
    responder_gln: str = Field(
        "0000000000000", description="GLN the gateway answers GS1 requests as"
    )
    confirmations: int = Field(
        0, ge=0, description="blocks a log must be buried under before it is indexed"
    )
    index_poll_interval: float = Field(0.5, gt=0, description="seconds between indexer polls")
    log_page_blocks: int = Field(2000, ge=1, description="block range per eth_getLogs page")
    previous_registries: list[PreviousRegistry] = Field(
        default_factory=list,
        description="registries an upgrade replaced, as JSON "
        '([{"registry": "0x…", "retired_at_block": N}]); default: `previous` of '
        "<home>/deployment.json when it names BORDERLEDGER_REGISTRY",
    )
    index_start_block: int = Field(
        0, ge=0, description="first block to index (the registry's deployment)"
    )
    stale_after_seconds: float = Field(30.0, description="index older than this is reported stale")
    max_upload_bytes: int = Field(64 * 1024 * 1024, description="largest CSV upload accepted")
    case_attachment_max_bytes: int = Field(
        10 * 1024 * 1024,
        gt=0,
        description="largest file added to a case (photo, PDF); larger: 413 (docs/limits.md)",
    )
    guide_photo_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="largest guide photo upload accepted (bytes)"
    )
    guide_photo_dir: Path | None = Field(
        None,
        description="directory for guide photos (by SHA-256); unset: photos are kept in the database",
    )
    sync_enroll_limit: int = Field(
        20_000, description="larger batches are enrolled as background jobs"
    )
    sync_label_limit: int = Field(
        10_000,
        ge=0,
        description="larger ZIP and PDF label files are made by a background job (a download "
        "when done); smaller ones are answered directly",
    )
    label_chunk: int = Field(
        1_000,
        ge=1,
        description="labels tagged and rendered at a time by a label file: what a label job "
        "holds in memory, and how often it reports progress",
    )
    job_lease_seconds: float = Field(
        30.0,
        gt=0,
        description="a background job's lease; a runner that stops heartbeating loses the job "
        "to another gateway process after this long",
    )
    case_calendars: Path | None = Field(
        None,
        description="TOML file of working-day calendars adding to or replacing the shipped "
        "ones (cases/data/calendars.toml format): a deployment's own holidays and closures",
    )
    case_clock_interval: float = Field(
        30.0,
        gt=0,
        description="seconds between looks for case clocks due (reminders, expiries); a "
        "gateway catches up on everything that fell due while it was down at start-up",
    )
    job_max_attempts: int = Field(
        5, ge=1, description="claims of one job (crashed runners included) before it fails"
    )
    job_poll_interval: float = Field(
        1.0, gt=0, description="seconds between looks for queued background jobs"
    )
    audit_rpc_urls: list[str] = Field(
        default_factory=list,
        description="JSON-RPC URLs the auditor's timeline page offers and its "
        "Content-Security-Policy admits (connect-src), as JSON "
        '(["https://rpc.example"]); default: RPC_URL only. Any other origin is refused '
        "by the browser (docs/audit-pages.md)",
    )
    bundle_signing_key: str | None = Field(
        None,
        description="hex Ed25519 seed (32 bytes) signing trust bundles; default: derived from "
        "SECRET_KEY with HKDF-SHA256 (ledger/trustbundle.py)",
    )

    # --- scanner -------------------------------------------------------------------------
    bundle_max_age_seconds: float = Field(
        86_400.0, gt=0, description="offline scans warn when the trust bundle is older than this"
    )

    # --- alert webhooks (api/webhook_delivery.py, docs/webhooks.md) ----------------------------------
    webhook_timeout: float = Field(
        10.0, gt=0, description="seconds a receiver has to answer one delivery"
    )
    webhook_backoff_base: float = Field(
        5.0, gt=0, description="first retry delay in seconds, doubled per attempt (jittered)"
    )
    webhook_backoff_cap: float = Field(
        3600.0, gt=0, description="longest delay between two attempts of one delivery"
    )
    webhook_max_attempts: int = Field(
        30, ge=1, description="attempts before a delivery is marked failed (redeliverable)"
    )
    webhook_poll_interval: float = Field(
        1.0, gt=0, description="seconds between scans of the delivery queue"
    )
    webhook_workers: int = Field(
        4, ge=1, le=64, description="deliveries sent concurrently by one gateway process"
    )
    webhook_batch_size: int = Field(
        50, ge=1, description="deliveries claimed per pass of the delivery thread"
    )
    webhook_secret_grace_seconds: float = Field(
        86400.0, ge=0, description="how long a rotated-out secret still signs deliveries"
    )
    webhook_allow_private_hosts: bool | None = Field(
        None,
        description="allow loopback/private webhook hosts; default: yes in dev, no in production",
    )
    webhook_allowed_hosts: str = Field(
        "",
        description="comma-separated CIDRs and host names webhooks may be delivered to although "
        "they resolve to loopback, private, link-local or otherwise non-public addresses "
        "(development and tests: '127.0.0.1/32'); empty: public addresses only",
    )
    anchor_organization: str | None = Field(
        None,
        description="name of the customs organization whose chain key anchors the custody "
        "log's checkpoints (unset: the gateway does not anchor)",
    )
    anchor_every_entries: int = Field(
        1000, ge=1, description="anchor a checkpoint once this many entries were appended"
    )
    anchor_interval_seconds: float = Field(
        60.0, gt=0, description="or once this much time passed with any new entry"
    )

    # --- people: sign-in, sessions, pages (api/users.py, api/pages/, docs/people.md) --------
    session_hours: float = Field(12.0, gt=0, description="a signed-in session lasts this long")
    cookie_secure: bool | None = Field(
        None, description="Secure flag of the session cookie; default: on outside development"
    )
    login_max_failures: int = Field(
        5, ge=1, description="wrong passwords in a row before an account is locked"
    )
    login_lockout_seconds: float = Field(
        900.0, gt=0, description="how long a locked account refuses every password"
    )
    login_failure_delay: float = Field(
        0.5,
        ge=0,
        description="seconds added to each failed sign-in (times the failures so far, "
        "at most 3 s): slows guessing without locking anyone out",
    )
    invitation_hours: float = Field(
        72.0, gt=0, description="an invitation link stays valid this long"
    )
    login_attempts_per_address: str = Field(
        "20/minute;200/hour",
        description="sign-in attempts one client address may make, across every account "
        "(the `limits` notation; empty: no limit). Over it: 429 with Retry-After, and no "
        "password is checked (api/ratelimit.py, docs/limits.md)",
    )

    @field_validator("login_attempts_per_address")
    @classmethod
    def _login_limit_parses(cls, value: str) -> str:
        """A sign-in limit that does not parse is refused at start-up, not at sign-in."""
        for part in filter(None, (p.strip() for p in value.split(";"))):
            if not re.fullmatch(r"\d+\s*(/|per)\s*.+", part):
                raise ValueError(f"sign-in limit is not like '20/minute': {value!r}")
        return value

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _allowlist_parses(cls, value: str) -> str:
        """A bad allow-list is refused at start-up, not at the first delivery."""
        try:
            parse_allowlist(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value

    # --- limits per caller (api/ratelimit.py, docs/limits.md) -----------------------------
    rate_limits_enabled: bool = Field(True, description="apply the rate limits below")
    rate_limits: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS),
        description="per API key, by route class (JSON; classes not named keep their default)",
    )
    rate_limits_per_address: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS_PER_ADDRESS),
        description="per client address, by route class (JSON; as rate_limits)",
    )
    redis_url: str | None = Field(
        None,
        description="redis://host:port/db: rate-limit counters shared by every gateway process "
        "(unset: each process counts in memory)",
    )
    redis_key_prefix: str = Field(
        "borderledger",
        description="prefix of the gateway's Redis keys (with the registry address after it)",
    )

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _per_key(cls, value: object) -> dict[str, str]:
        return _limits_by_class(value, DEFAULT_RATE_LIMITS)

    @field_validator("rate_limits_per_address", mode="before")
    @classmethod
    def _per_address(cls, value: object) -> dict[str, str]:
        return _limits_by_class(value, DEFAULT_RATE_LIMITS_PER_ADDRESS)

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key.startswith("dev-only"):
            raise ValueError("BORDERLEDGER_SECRET_KEY must be set in production")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url or f"sqlite:///{self.home / 'gateway.db'}"
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @property
    def webhook_private_hosts_allowed(self) -> bool:
        if self.webhook_allow_private_hosts is not None:
            return self.webhook_allow_private_hosts
        return self.environment == "dev"

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment != "dev"

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keys"

    @property
    def deployment_file(self) -> Path:
        return self.home / "deployment.json"

    def retired_registries(self) -> list[PreviousRegistry]:
        """The registries the current one replaced: `previous_registries` when set, else the
        deployment file's `previous` when that file names the current registry."""
        if self.previous_registries or not self.registry or not self.deployment_file.exists():
            return list(self.previous_registries)
        try:
            deployment = json.loads(self.deployment_file.read_text())
            if str(deployment.get("registry", "")).lower() != self.registry.lower():
                return []
            return [PreviousRegistry.model_validate(p) for p in deployment.get("previous", [])]
        except (ValueError, AttributeError, ValidationError) as exc:
            raise InvalidInput(f"{self.deployment_file}: unreadable `previous`: {exc}") from exc
