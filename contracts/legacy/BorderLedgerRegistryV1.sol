// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/**
 * @title BorderLedgerRegistryV1 (the first registry, kept to test upgrades from it)
 * @notice Registry of genuine product batches for border verification.
 *
 * A registry admin accredits rights holders (with their customs trademark recordation
 * reference) and customs agencies. A rights holder registers each batch of genuine items in
 * one transaction as the root of a Merkle tree over salted leaves `(gtin, serial, salt)`,
 * byte-compatible with OpenZeppelin's StandardMerkleTree. Each item carries a tag signed
 * (EIP-712, `Tag(string gtin,string serial,string lot)`) by one of the holder's signer keys.
 *
 * A batch is one lot of one GTIN: its id is `keccak256(abi.encode(gtin, lot))`, so anyone
 * holding a tag can find its batch without an index, and a tag's lot is bound to its batch.
 * A GTIN belongs to the first rights holder that registers a batch of it.
 *
 * Each customs agency keeps an append-only custody log of scans and custody events (RFC 6962
 * Merkle tree, SHA-256) off chain and anchors its checkpoints `(size, root)` here, one
 * transaction per checkpoint whatever the number of entries; sizes only grow, so auditors can
 * ask the gateway for consistency proofs between any two anchored checkpoints.
 *
 * Design rules: custom errors carry the offending values, every state change emits an event,
 * no unbounded loops over storage, checks-effects-interactions (there are no interactions).
 */
contract BorderLedgerRegistryV1 is AccessControl, EIP712 {
    /// @notice Role of accredited rights holders (brand owners) who register batches.
    bytes32 public constant RIGHTS_HOLDER_ROLE = keccak256("RIGHTS_HOLDER_ROLE");
    /// @notice Role of accredited customs agencies.
    bytes32 public constant CUSTOMS_ROLE = keccak256("CUSTOMS_ROLE");
    /// @notice EIP-712 type hash of a tag.
    bytes32 public constant TAG_TYPEHASH = keccak256("Tag(string gtin,string serial,string lot)");

    /// @notice Lifecycle status of a batch or of one item.
    /// @dev `Destroyed` is final; every other status may be changed again (a stolen item found).
    enum Status {
        Active,
        Recalled,
        Stolen,
        Destroyed,
        Decommissioned
    }

    /// @notice Accreditation record of a rights holder.
    struct RightsHolder {
        string name;
        string recordation;
    }

    /// @notice A tag-signing key and the window in which it was active.
    struct SignerKey {
        address holder;
        uint40 addedAt;
        uint40 revokedAt;
    }

    /// @notice A registered batch; packed into two storage slots.
    struct Batch {
        bytes32 root;
        address holder;
        uint48 itemCount;
        uint40 registeredAt;
        Status status;
    }

    /// @notice Everything a verifier needs to judge one tag, computed in one call.
    struct TagCheck {
        bytes32 batchId;
        bool batchRegistered;
        address holder;
        address signer;
        bool signatureValid;
        bool inBatch;
        Status batchStatus;
        Status itemStatus;
    }

    mapping(address account => RightsHolder) private _rightsHolders;
    mapping(address account => string name) private _customsAgencies;
    mapping(address signer => SignerKey) private _signerKeys;
    mapping(bytes32 batchId => Batch) private _batches;
    mapping(bytes32 gtinHash => address holder) private _gtinHolders;
    mapping(bytes32 batchId => mapping(bytes32 itemKey => Status)) private _itemStatus;
    mapping(address agency => mapping(uint64 size => bytes32 root)) private _checkpointRoots;
    mapping(address agency => uint64 size) private _latestCheckpointSize;

    /// @notice An address argument was the zero address.
    error ZeroAddress();
    /// @notice An accreditation name was empty.
    error EmptyName(address account);
    /// @notice The account already holds the role it is being accredited for.
    error AlreadyAccredited(address account, bytes32 role);
    /// @notice The signer key is already registered (keys are never reused, even after revocation).
    error SignerAlreadyRegistered(address signer, address holder);
    /// @notice No signer key with this address is registered.
    error UnknownSigner(address signer);
    /// @notice The signer key was already revoked at `revokedAt`.
    error SignerAlreadyRevoked(address signer, uint40 revokedAt);
    /// @notice The caller neither owns the key nor is the registry admin.
    error NotSignerHolder(address caller, address signer, address holder);
    /// @notice The GTIN is not 14 digits with a valid GS1 mod-10 check digit.
    error InvalidGtin(string gtin);
    /// @notice The lot is empty or longer than GS1's 20 characters.
    error InvalidLot(string lot);
    /// @notice The Merkle root is zero.
    error InvalidRoot(bytes32 root);
    /// @notice The item count is zero or does not fit in 48 bits.
    error InvalidItemCount(uint256 itemCount);
    /// @notice A batch with this id (this GTIN and lot) is already registered.
    error BatchAlreadyRegistered(bytes32 batchId, address holder);
    /// @notice The GTIN belongs to another rights holder.
    error GtinOwnedByAnotherHolder(string gtin, address owner);
    /// @notice No batch with this id is registered.
    error UnknownBatch(bytes32 batchId);
    /// @notice The caller neither owns the batch nor is the registry admin.
    error NotBatchHolder(bytes32 batchId, address caller, address holder);
    /// @notice The proof does not show that `leaf` is in the batch.
    error ItemNotInBatch(bytes32 batchId, bytes32 leaf);
    /// @notice The status is already `status` (`itemKey` is zero for a whole batch).
    error StatusUnchanged(bytes32 batchId, bytes32 itemKey, Status status);
    /// @notice The status `status` is final (`itemKey` is zero for a whole batch).
    error StatusIsFinal(bytes32 batchId, bytes32 itemKey, Status status);

    /// @notice A checkpoint's tree size is zero (an empty log has nothing to anchor).
    error InvalidCheckpointSize(uint64 size);
    /// @notice The agency already anchored a checkpoint of `latestSize` >= `size`: a log only grows.
    error CheckpointNotIncreasing(address agency, uint64 latestSize, uint64 size);

    /// @notice A rights holder was accredited.
    event RightsHolderAccredited(address indexed holder, string name, string recordation);
    /// @notice A customs agency was accredited.
    event CustomsAgencyAccredited(address indexed agency, string name);
    /// @notice A tag-signing key was added for `holder`.
    event SignerAdded(address indexed holder, address indexed signer, uint40 addedAt);
    /// @notice A tag-signing key of `holder` was revoked.
    event SignerRevoked(address indexed holder, address indexed signer, uint40 revokedAt);
    /// @notice A batch was registered.
    event BatchRegistered(
        bytes32 indexed batchId,
        address indexed holder,
        string gtin,
        string lot,
        bytes32 root,
        uint256 itemCount,
        bytes32 metadataHash
    );
    /// @notice The status of a whole batch changed.
    event BatchStatusChanged(bytes32 indexed batchId, Status previous, Status status, address indexed by);
    /// @notice The status of one item changed; `itemKey` is `keccak256(abi.encode(gtin, serial))`.
    event ItemStatusChanged(
        bytes32 indexed batchId,
        bytes32 indexed itemKey,
        bytes32 leaf,
        Status previous,
        Status status,
        address indexed by
    );

    /// @notice A customs agency anchored the checkpoint (`size`, `root`) of its custody log.
    event CheckpointAnchored(address indexed agency, uint64 indexed size, bytes32 root);

    /// @param admin The account that accredits rights holders and customs agencies.
    constructor(address admin) EIP712("BorderLedger", "1") {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ accreditation

    /**
     * @notice Accredits `holder` as a rights holder, as customs recordation of a trademark does.
     *
     * Requirements:
     * - the caller has `DEFAULT_ADMIN_ROLE`;
     * - `holder` is not zero and not yet a rights holder; `name` is not empty.
     *
     * @param holder The rights holder's account.
     * @param name The rights holder's legal name.
     * @param recordation The customs trademark recordation reference (e.g. a CBP recordation number).
     */
    function accreditRightsHolder(
        address holder,
        string calldata name,
        string calldata recordation
    ) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (holder == address(0)) revert ZeroAddress();
        if (bytes(name).length == 0) revert EmptyName(holder);
        if (hasRole(RIGHTS_HOLDER_ROLE, holder)) revert AlreadyAccredited(holder, RIGHTS_HOLDER_ROLE);
        _rightsHolders[holder] = RightsHolder(name, recordation);
        _grantRole(RIGHTS_HOLDER_ROLE, holder);
        emit RightsHolderAccredited(holder, name, recordation);
    }

    /**
     * @notice Accredits `agency` as a customs agency.
     *
     * Requirements:
     * - the caller has `DEFAULT_ADMIN_ROLE`;
     * - `agency` is not zero and not yet a customs agency; `name` is not empty.
     */
    function accreditCustomsAgency(address agency, string calldata name) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (agency == address(0)) revert ZeroAddress();
        if (bytes(name).length == 0) revert EmptyName(agency);
        if (hasRole(CUSTOMS_ROLE, agency)) revert AlreadyAccredited(agency, CUSTOMS_ROLE);
        _customsAgencies[agency] = name;
        _grantRole(CUSTOMS_ROLE, agency);
        emit CustomsAgencyAccredited(agency, name);
    }

    // ------------------------------------------------------------------ signer keys

    /**
     * @notice Adds `signer` as a tag-signing key of the calling rights holder.
     *
     * Requirements:
     * - the caller has `RIGHTS_HOLDER_ROLE`;
     * - `signer` is not zero and has never been registered (by anyone).
     */
    function addSigner(address signer) external onlyRole(RIGHTS_HOLDER_ROLE) {
        if (signer == address(0)) revert ZeroAddress();
        SignerKey storage key = _signerKeys[signer];
        if (key.holder != address(0)) revert SignerAlreadyRegistered(signer, key.holder);
        uint40 now_ = uint40(block.timestamp);
        _signerKeys[signer] = SignerKey(msg.sender, now_, 0);
        emit SignerAdded(msg.sender, signer, now_);
    }

    /**
     * @notice Revokes `signer`. The revocation time is kept: tags of batches registered while
     * the key was active stay valid, tags of later batches do not.
     *
     * Requirements:
     * - `signer` is registered and not yet revoked;
     * - the caller owns the key or has `DEFAULT_ADMIN_ROLE`.
     */
    function revokeSigner(address signer) external {
        SignerKey storage key = _signerKeys[signer];
        address holder = key.holder;
        if (holder == address(0)) revert UnknownSigner(signer);
        if (msg.sender != holder && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert NotSignerHolder(msg.sender, signer, holder);
        }
        if (key.revokedAt != 0) revert SignerAlreadyRevoked(signer, key.revokedAt);
        uint40 now_ = uint40(block.timestamp);
        key.revokedAt = now_;
        emit SignerRevoked(holder, signer, now_);
    }

    // ------------------------------------------------------------------ batches

    /**
     * @notice Registers a batch (one lot of one GTIN) of `itemCount` genuine items whose salted
     * leaves have the Merkle root `root`.
     *
     * Requirements:
     * - the caller has `RIGHTS_HOLDER_ROLE`;
     * - `gtin` is a valid GTIN-14, owned by the caller or by nobody yet; `lot` has 1-20 bytes;
     * - `root` is not zero; `itemCount` is in [1, 2^48);
     * - the batch `(gtin, lot)` is not registered yet.
     *
     * @param gtin The GTIN-14 of the batch's product.
     * @param lot The lot (GS1 AI 10) of the batch.
     * @param root The Merkle root over `(gtin, serial, salt)` leaves.
     * @param itemCount The number of items (leaves) in the batch.
     * @param metadataHash Hash of the batch's off-chain metadata (emitted, not stored).
     * @return batchId `keccak256(abi.encode(gtin, lot))`.
     */
    function registerBatch(
        string calldata gtin,
        string calldata lot,
        bytes32 root,
        uint256 itemCount,
        bytes32 metadataHash
    ) external onlyRole(RIGHTS_HOLDER_ROLE) returns (bytes32 batchId) {
        _requireValidGtin(gtin);
        if (bytes(lot).length == 0 || bytes(lot).length > 20) revert InvalidLot(lot);
        if (root == bytes32(0)) revert InvalidRoot(root);
        if (itemCount == 0 || itemCount > type(uint48).max) revert InvalidItemCount(itemCount);

        batchId = batchIdOf(gtin, lot);
        Batch storage batch = _batches[batchId];
        if (batch.holder != address(0)) revert BatchAlreadyRegistered(batchId, batch.holder);

        bytes32 gtinHash = keccak256(bytes(gtin));
        address owner = _gtinHolders[gtinHash];
        if (owner == address(0)) {
            _gtinHolders[gtinHash] = msg.sender;
        } else if (owner != msg.sender) {
            revert GtinOwnedByAnotherHolder(gtin, owner);
        }

        batch.root = root;
        batch.holder = msg.sender;
        batch.itemCount = uint48(itemCount);
        batch.registeredAt = uint40(block.timestamp);
        emit BatchRegistered(batchId, msg.sender, gtin, lot, root, itemCount, metadataHash);
    }

    /**
     * @notice Sets the status of a whole batch (recall, theft, destruction, decommissioning).
     *
     * Requirements:
     * - the batch is registered; the caller owns it or has `DEFAULT_ADMIN_ROLE`;
     * - the batch is not `Destroyed` and `status` differs from its current status.
     */
    function setBatchStatus(bytes32 batchId, Status status) external {
        Batch storage batch = _requireBatchAuthority(batchId);
        Status previous = batch.status;
        _requireTransition(batchId, bytes32(0), previous, status);
        batch.status = status;
        emit BatchStatusChanged(batchId, previous, status, msg.sender);
    }

    /**
     * @notice Sets the status of one item, proven to be in its batch by `salt` and `proof`.
     * The status is stored under the item's key `keccak256(abi.encode(gtin, serial))`, so a
     * verifier holding only the tag (no salt) still sees that the item is stolen or recalled.
     *
     * Requirements:
     * - the batch `(gtin, lot)` is registered; the caller owns it or has `DEFAULT_ADMIN_ROLE`;
     * - `proof` shows the leaf `(gtin, serial, salt)` is in the batch;
     * - the item is not `Destroyed` and `status` differs from its current status.
     */
    function setItemStatus(
        string calldata gtin,
        string calldata lot,
        string calldata serial,
        bytes32 salt,
        bytes32[] calldata proof,
        Status status
    ) external {
        bytes32 batchId = batchIdOf(gtin, lot);
        Batch storage batch = _requireBatchAuthority(batchId);
        bytes32 leaf = leafHash(gtin, serial, salt);
        if (!MerkleProof.verifyCalldata(proof, batch.root, leaf)) revert ItemNotInBatch(batchId, leaf);
        bytes32 key = itemKeyOf(gtin, serial);
        Status previous = _itemStatus[batchId][key];
        _requireTransition(batchId, key, previous, status);
        _itemStatus[batchId][key] = status;
        emit ItemStatusChanged(batchId, key, leaf, previous, status, msg.sender);
    }

    // ------------------------------------------------------------------ custody log checkpoints

    /**
     * @notice Anchors the checkpoint of the calling customs agency's custody log: the RFC 6962
     * Merkle root `root` of its first `size` entries. One transaction commits any number of
     * entries; auditors check inclusion and consistency proofs against the anchored roots.
     *
     * Requirements:
     * - the caller has `CUSTOMS_ROLE`;
     * - `size` is not zero and greater than the caller's latest anchored size;
     * - `root` is not zero.
     *
     * @param size The number of log entries the root covers.
     * @param root The RFC 6962 (SHA-256) Merkle tree hash of those entries.
     */
    function anchorCheckpoint(uint64 size, bytes32 root) external onlyRole(CUSTOMS_ROLE) {
        if (size == 0) revert InvalidCheckpointSize(size);
        if (root == bytes32(0)) revert InvalidRoot(root);
        uint64 latest = _latestCheckpointSize[msg.sender];
        if (size <= latest) revert CheckpointNotIncreasing(msg.sender, latest, size);
        _checkpointRoots[msg.sender][size] = root;
        _latestCheckpointSize[msg.sender] = size;
        emit CheckpointAnchored(msg.sender, size, root);
    }

    /// @notice The root `agency` anchored for tree size `size` (zero if never anchored).
    function checkpointRoot(address agency, uint64 size) external view returns (bytes32) {
        return _checkpointRoots[agency][size];
    }

    /// @notice The latest checkpoint `agency` anchored (zero size and root if none).
    function latestCheckpoint(address agency) external view returns (uint64 size, bytes32 root) {
        size = _latestCheckpointSize[agency];
        root = _checkpointRoots[agency][size];
    }

    // ------------------------------------------------------------------ views

    /// @notice The id of the batch of `gtin` and `lot`: `keccak256(abi.encode(gtin, lot))`.
    function batchIdOf(string calldata gtin, string calldata lot) public pure returns (bytes32) {
        return keccak256(abi.encode(gtin, lot));
    }

    /// @notice The key item statuses are stored under: `keccak256(abi.encode(gtin, serial))`.
    function itemKeyOf(string calldata gtin, string calldata serial) public pure returns (bytes32) {
        return keccak256(abi.encode(gtin, serial));
    }

    /// @notice The StandardMerkleTree leaf of an item: `keccak256(keccak256(abi.encode(gtin, serial, salt)))`.
    function leafHash(string calldata gtin, string calldata serial, bytes32 salt) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(gtin, serial, salt))));
    }

    /// @notice The EIP-712 digest a signer key signs for the tag `(gtin, serial, lot)`.
    function tagDigest(string calldata gtin, string calldata serial, string calldata lot) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(TAG_TYPEHASH, keccak256(bytes(gtin)), keccak256(bytes(serial)), keccak256(bytes(lot)))
        );
        return _hashTypedDataV4(structHash);
    }

    /// @notice The EIP-712 domain separator of this registry.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The accreditation record of `holder` (empty name if never accredited).
    function rightsHolder(address holder) external view returns (RightsHolder memory) {
        return _rightsHolders[holder];
    }

    /// @notice The name of the customs agency `agency` (empty if never accredited).
    function customsAgency(address agency) external view returns (string memory) {
        return _customsAgencies[agency];
    }

    /// @notice The signer key record of `signer` (zero holder if unknown).
    function signerKey(address signer) external view returns (SignerKey memory) {
        return _signerKeys[signer];
    }

    /// @notice The rights holder that owns `gtin` (zero if no batch of it is registered).
    function gtinHolder(string calldata gtin) external view returns (address) {
        return _gtinHolders[keccak256(bytes(gtin))];
    }

    /// @notice The batch `batchId` (zero holder if not registered).
    function getBatch(bytes32 batchId) external view returns (Batch memory) {
        return _batches[batchId];
    }

    /// @notice The item-level status of the item `itemKey` in batch `batchId`.
    function itemStatus(bytes32 batchId, bytes32 itemKey) external view returns (Status) {
        return _itemStatus[batchId][itemKey];
    }

    /**
     * @notice Whether `salt` and `proof` show that the item `(gtin, serial)` is in the
     * registered batch `(gtin, lot)`. The leaf is computed here from the values, never taken
     * from the caller, so an inner node of the tree cannot pass for an item.
     */
    function isItemInBatch(
        string calldata gtin,
        string calldata lot,
        string calldata serial,
        bytes32 salt,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _batches[batchIdOf(gtin, lot)].root;
        return root != bytes32(0) && _isMember(root, gtin, serial, salt, proof);
    }

    /**
     * @notice Whether `signer` may sign tags of a batch of `holder` registered at `registeredAt`:
     * the key belongs to `holder` and is either still active or was active at registration.
     */
    function isSignerValidFor(address signer, address holder, uint40 registeredAt) public view returns (bool) {
        SignerKey memory key = _signerKeys[signer];
        if (key.holder != holder || holder == address(0)) return false;
        if (key.revokedAt == 0) return true;
        return key.addedAt <= registeredAt && registeredAt < key.revokedAt;
    }

    /**
     * @notice Judges a tag in one call: batch registration, signature (empty `signature` means
     * an unsigned check), membership (empty `proof` with zero `salt` means no membership check)
     * and the batch's and item's statuses (which need no salt). Never reverts on bad
     * signatures or proofs.
     */
    function checkTag(
        string calldata gtin,
        string calldata serial,
        string calldata lot,
        bytes32 salt,
        bytes32[] calldata proof,
        bytes calldata signature
    ) external view returns (TagCheck memory check) {
        check.batchId = batchIdOf(gtin, lot);
        Batch storage batch = _batches[check.batchId];
        check.holder = batch.holder;
        check.batchRegistered = batch.holder != address(0);
        check.batchStatus = batch.status;
        if (signature.length != 0) {
            check.signer = _recoverTagSigner(gtin, serial, lot, signature);
            check.signatureValid =
                check.signer != address(0) &&
                check.batchRegistered &&
                isSignerValidFor(check.signer, batch.holder, batch.registeredAt);
        }
        if (check.batchRegistered) {
            check.itemStatus = _itemStatus[check.batchId][itemKeyOf(gtin, serial)];
            if (salt != bytes32(0) || proof.length != 0) {
                check.inBatch = _isMember(batch.root, gtin, serial, salt, proof);
            }
        }
    }

    // ------------------------------------------------------------------ internals

    function _isMember(
        bytes32 root,
        string calldata gtin,
        string calldata serial,
        bytes32 salt,
        bytes32[] calldata proof
    ) private pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, root, leafHash(gtin, serial, salt));
    }

    /// @dev The tag's signer, or zero for a malformed or malleable (high-s) signature.
    function _recoverTagSigner(
        string calldata gtin,
        string calldata serial,
        string calldata lot,
        bytes calldata signature
    ) private view returns (address) {
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(tagDigest(gtin, serial, lot), signature);
        return err == ECDSA.RecoverError.NoError ? signer : address(0);
    }

    function _requireBatchAuthority(bytes32 batchId) private view returns (Batch storage batch) {
        batch = _batches[batchId];
        address holder = batch.holder;
        if (holder == address(0)) revert UnknownBatch(batchId);
        if (msg.sender != holder && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert NotBatchHolder(batchId, msg.sender, holder);
        }
    }

    function _requireTransition(bytes32 batchId, bytes32 leaf, Status previous, Status status) private pure {
        if (previous == Status.Destroyed) revert StatusIsFinal(batchId, leaf, previous);
        if (previous == status) revert StatusUnchanged(batchId, leaf, status);
    }

    /// @dev 14 ASCII digits whose last is the GS1 mod-10 check digit of the first 13.
    function _requireValidGtin(string calldata gtin) private pure {
        bytes calldata digits = bytes(gtin);
        if (digits.length != 14) revert InvalidGtin(gtin);
        uint256 sum;
        for (uint256 i = 0; i < 14; ++i) {
            uint8 c = uint8(digits[i]);
            if (c < 0x30 || c > 0x39) revert InvalidGtin(gtin);
            if (i < 13) sum += (i % 2 == 0) ? (c - 0x30) * 3 : (c - 0x30);
        }
        if ((10 - (sum % 10)) % 10 != uint8(digits[13]) - 0x30) revert InvalidGtin(gtin);
    }
}
