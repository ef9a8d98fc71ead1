"""The BorderLedger ledger core: batches as Merkle roots, signed GS1 Digital Link tags.

Domain modules (`gs1`, `digital_link`, `merkle`, `tags`, `batch`, `qr`) import neither web3 nor
FastAPI; chain access lives in `contract`, `tx` and `node`.
"""

from ledger.batch import BatchInput, batch_id_of, read_batch_csv
from ledger.digital_link import DigitalLink, parse_digital_link
from ledger.errors import BorderLedgerError
from ledger.gs1 import Sgtin, normalize_gtin
from ledger.merkle import MerkleTree, item_salt, leaf_hash, verify_proof
from ledger.models import Status
from ledger.tags import TagDomain, TagSigner, recover_signer, tag_digest

__all__ = [
    "BatchInput",
    "BorderLedgerError",
    "DigitalLink",
    "MerkleTree",
    "Sgtin",
    "Status",
    "TagDomain",
    "TagSigner",
    "batch_id_of",
    "item_salt",
    "leaf_hash",
    "normalize_gtin",
    "parse_digital_link",
    "read_batch_csv",
    "recover_signer",
    "tag_digest",
    "verify_proof",
]
