"""All settings, from environment variables (prefix `BORDERLEDGER_`) or a `.env` file.

One class, so every knob is in one place with its default. Defaults are the embedded
development setup: a local chain started for the user, files under `.borderledger/`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The checkout this package lives in: node binaries and compiled contracts are found here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keys"

    @property
    def deployment_file(self) -> Path:
        return self.home / "deployment.json"
