"""The officer's device identity: an Ed25519 key that signs scans made offline.

Layout of a device directory (default `<BORDERLEDGER_HOME>/device`, created mode 0700):

* `device_key.pem`: the private key, PKCS#8 PEM, unencrypted, file mode 0600 (a handheld has
  no one to type a password at every scan; protect the device itself). A key file readable by
  group or others is refused, as ssh does;
* `queue.db`: the offline queue (`scanner.queue`).

The device id is derived from the public key (`ledger.scan_record.device_id_of`), so
`borderledger device init` can print it before the agency registers the key with the gateway
(POST /v1/devices), and the gateway computes the same id.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import KeystoreError
from ledger.scan_record import device_id_of, encode_public_key, sign_record

KEY_FILE = "device_key.pem"
QUEUE_FILE = "queue.db"


def default_dir(home: Path) -> Path:
    return home / "device"


@dataclass(frozen=True)
class DeviceKey:
    """A loaded device key, with the id and public key the gateway knows it by."""

    path: Path
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> str:
        """Base64 of the raw 32-byte public key: what POST /v1/devices takes."""
        return encode_public_key(self.private_key.public_key())

    @property
    def public_key_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def device_id(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return device_id_of(raw)

    def sign(self, record: str) -> str:
        return sign_record(self.private_key, record)


def init_device(directory: Path) -> tuple[DeviceKey, bool]:
    """Create the device key in `directory` unless one exists. Returns (key, created).

    Never overwrites: a registered key that is replaced would orphan the device's queue."""
    path = directory / KEY_FILE
    if path.exists():
        return load_device(directory), False
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # O_EXCL: two `device init` at once cannot both write; 0600 from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
    except FileExistsError:
        return load_device(directory), False
    except OSError as exc:
        raise KeystoreError(f"cannot create the device key in {directory}: {exc}") from None
    return DeviceKey(path, key), True


def load_device(directory: Path) -> DeviceKey:
    """The device key in `directory`; KeystoreError says what is wrong (missing, readable by
    others, not an Ed25519 PEM key)."""
    path = directory / KEY_FILE
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeystoreError(
            f"no device key at {path}: run `borderledger device init` first"
        ) from None
    except OSError as exc:
        raise KeystoreError(f"cannot read the device key {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeystoreError(
            f"device key {path} is accessible by other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeystoreError(f"device key {path} is not a readable PEM key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeystoreError(f"device key {path} is not an Ed25519 key")
    return DeviceKey(path, key)


def has_device(directory: Path) -> bool:
    return (directory / KEY_FILE).exists()
