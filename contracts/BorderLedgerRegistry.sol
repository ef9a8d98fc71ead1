// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/**
 * @title BorderLedgerRegistry
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
 * A GTIN belongs to the rights holder the registry admin bound it to (`bindGtin`, as customs
 * recordation of the brand's trademark does); only that holder registers batches of it, and
 * only the admin moves it to another holder (`reassignGtin`). Batches already registered keep
 * their holder when their GTIN moves.
 *
 * The admin may also bind a whole GS1 company prefix (6 to 12 digits, `bindCompanyPrefix`), as
 * a brand's recordation covers every product it numbers: a GTIN bound on its own wins over any
 * prefix, and among prefixes the longest bound one wins. A GTIN's prefixes are the leading 6 to
 * 12 digits of its GTIN-13 (after the GTIN-14 indicator digit, which GS1 uses for packaging
 * levels of the same product), so resolving a holder costs at most one GTIN lookup and seven
 * prefix lookups, whatever the number of bindings.
 *
 * A rights holder whose accreditation is revoked (`revokeRightsHolder`) loses every power it
 * had: it registers no batch, adds no signer key and changes no status. Its batches stay as
 * they were, like batches signed before a key was revoked: its keys keep vouching for tags of
 * batches registered before the revocation and for nothing later. Revocation is final for
 * the account; a brand that comes back is accredited under a new account.
 *
 * Only a batch's holder changes the statuses of the batch and its items; the registry admin
 * cannot. The admin role moves in two steps with a delay (`AccessControlDefaultAdminRules`).
 *
 * Each customs agency keeps an append-only custody log of scans and custody events (RFC 6962
 * Merkle tree, SHA-256) off chain and anchors its checkpoints `(size, root)` here, one
 * transaction per checkpoint whatever the number of entries; sizes only grow, so auditors can
 * ask the gateway for consistency proofs between any two anchored checkpoints.
 *
 * Design rules: custom errors carry the offending values, every state change emits an event,
 * no unbounded loops over storage, checks-effects-interactions (there are no interactions).
 */
contract BorderLedgerRegistry is AccessControlDefaultAdminRules, EIP712 {
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

    /// @notice Delay before an accepted admin transfer takes effect (and before a delay change).
    uint48 public constant ADMIN_TRANSFER_DELAY = 2 days;

    /// @notice Accreditation record of a rights holder; `revokedAt` is zero while accredited.
    struct RightsHolder {
        string name;
        string recordation;
        uint40 revokedAt;
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
    mapping(bytes32 prefixHash => address holder) private _prefixHolders;
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
    /// @notice The GTIN belongs to another rights holder (`owner`) than `caller`.
    error GtinOwnedByAnotherHolder(string gtin, address owner, address caller);
    /// @notice The GTIN is bound to no rights holder yet: the registry admin binds it first.
    error GtinNotBound(string gtin);
    /// @notice The GTIN is already bound to `owner` (reassign it instead).
    error GtinAlreadyBound(string gtin, address owner);
    /// @notice The company prefix is not 6 to 12 digits, or lies in a GS1 range that numbers no
    /// company's products (restricted circulation, coupons, refund receipts, GTIN-8).
    error InvalidCompanyPrefix(string prefix);
    /// @notice The company prefix is already bound to `owner` (unbind it first).
    error CompanyPrefixAlreadyBound(string prefix, address owner);
    /// @notice The company prefix is bound to no rights holder.
    error CompanyPrefixNotBound(string prefix);
    /// @notice The account is not an accredited (and unrevoked) rights holder.
    error NotRightsHolder(address account);
    /// @notice The rights holder's accreditation was revoked at `revokedAt` (revocation is final).
    error RightsHolderIsRevoked(address holder, uint40 revokedAt);
    /// @notice Accreditation roles are granted only through `accreditRightsHolder` / `accreditCustomsAgency`.
    error GrantThroughAccreditation(bytes32 role);
    /// @notice No batch with this id is registered.
    error UnknownBatch(bytes32 batchId);
    /// @notice The caller does not own the batch.
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
    /// @notice The accreditation of rights holder `holder` was revoked at `revokedAt`.
    event RightsHolderRevoked(address indexed holder, uint40 revokedAt, address indexed by);
    /// @notice `gtin` was bound to `holder` (its first binding).
    event GtinBound(bytes32 indexed gtinHash, string gtin, address indexed holder);
    /// @notice `gtin` moved from `previous` to `holder` by the registry admin.
    event GtinReassigned(bytes32 indexed gtinHash, string gtin, address indexed previous, address indexed holder);
    /// @notice The GS1 company prefix `prefix` was bound to `holder`.
    event CompanyPrefixBound(bytes32 indexed prefixHash, string prefix, address indexed holder);
    /// @notice The GS1 company prefix `prefix`, bound to `previous`, was unbound by the admin.
    event CompanyPrefixUnbound(bytes32 indexed prefixHash, string prefix, address indexed previous);
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
    constructor(address admin) AccessControlDefaultAdminRules(ADMIN_TRANSFER_DELAY, admin) EIP712("BorderLedger", "1") {}

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
        uint40 revokedAt = _rightsHolders[holder].revokedAt;
        if (revokedAt != 0) revert RightsHolderIsRevoked(holder, revokedAt);
        if (hasRole(RIGHTS_HOLDER_ROLE, holder)) revert AlreadyAccredited(holder, RIGHTS_HOLDER_ROLE);
        _rightsHolders[holder] = RightsHolder(name, recordation, 0);
        _grantRole(RIGHTS_HOLDER_ROLE, holder);
        emit RightsHolderAccredited(holder, name, recordation);
    }

    /**
     * @notice Revokes the accreditation of rights holder `holder`, for good. From now on it
     * registers no batch, adds no signer key and changes no status; its keys vouch only for
     * tags of batches registered before now (see `isSignerValidFor`). `revokeRole` and
     * `renounceRole` of `RIGHTS_HOLDER_ROLE` revoke the same way.
     *
     * Requirements:
     * - the caller has `DEFAULT_ADMIN_ROLE`;
     * - `holder` is an accredited rights holder.
     */
    function revokeRightsHolder(address holder) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (!hasRole(RIGHTS_HOLDER_ROLE, holder)) revert NotRightsHolder(holder);
        _revokeRole(RIGHTS_HOLDER_ROLE, holder);
    }

    /**
     * @notice Binds `gtin` to the rights holder `holder`, as the recordation of its trademark
     * shows: only `holder` registers batches of it from now on.
     *
     * Requirements:
     * - the caller has `DEFAULT_ADMIN_ROLE`;
     * - `gtin` is a valid GTIN-14 bound to nobody yet; `holder` is an accredited rights holder.
     */
    function bindGtin(string calldata gtin, address holder) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireValidGtin(gtin);
        _requireActiveHolder(holder);
        bytes32 gtinHash = keccak256(bytes(gtin));
        address owner = _gtinHolders[gtinHash];
        if (owner != address(0)) revert GtinAlreadyBound(gtin, owner);
        _gtinHolders[gtinHash] = holder;
        emit GtinBound(gtinHash, gtin, holder);
    }

    /**
     * @notice Moves `gtin` to the rights holder `holder` (a brand sold, a recordation
     * corrected). Batches already registered keep their holder; new ones are `holder`'s.
     *
     * Requirements:
     * - the caller has `DEFAULT_ADMIN_ROLE`;
     * - `gtin` is bound, to another account than `holder`; `holder` is an accredited rights holder.
     */
    function reassignGtin(string calldata gtin, address holder) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireActiveHolder(holder);
        bytes32 gtinHash = keccak256(bytes(gtin));
        address previous = _gtinHolders[gtinHash];
        if (previous == address(0)) revert GtinNotBound(gtin);
        if (previous == holder) revert GtinAlreadyBound(gtin, holder);
        _gtinHolders[gtinHash] = holder;
        emit GtinReassigned(gtinHash, gtin, previous, holder);
    }

    /**
     * @notice Binds the GS1 company prefix `prefix` to the rights holder `holder`: every GTIN
     * under it that is not bound on its own is `holder`'s (see `resolveGtinHolder`). A longer
     * bound prefix wins over a shorter one.
     *
     * Requirements:
     * - the caller has `DEFAULT_ADMIN_ROLE`;
     * - `prefix` is a valid company prefix bound to nobody; `holder` is an accredited rights holder.
     *
     * @param prefix 6 to 12 digits, as GS1 allocated them (U.P.C. prefixes with their leading 0).
     * @param holder The rights holder's account.
     */
    function bindCompanyPrefix(string calldata prefix, address holder) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireValidCompanyPrefix(prefix);
        _requireActiveHolder(holder);
        bytes32 prefixHash = keccak256(bytes(prefix));
        address owner = _prefixHolders[prefixHash];
        if (owner != address(0)) revert CompanyPrefixAlreadyBound(prefix, owner);
        _prefixHolders[prefixHash] = holder;
        emit CompanyPrefixBound(prefixHash, prefix, holder);
    }

    /**
     * @notice Unbinds the company prefix `prefix` (a licence ended, a binding made in error).
     * Batches already registered keep their holder; GTINs bound on their own stay bound.
     *
     * Requirements:
     * - the caller has `DEFAULT_ADMIN_ROLE`;
     * - `prefix` is bound.
     */
    function unbindCompanyPrefix(string calldata prefix) external onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes32 prefixHash = keccak256(bytes(prefix));
        address previous = _prefixHolders[prefixHash];
        if (previous == address(0)) revert CompanyPrefixNotBound(prefix);
        delete _prefixHolders[prefixHash];
        emit CompanyPrefixUnbound(prefixHash, prefix, previous);
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
     * - the caller has `RIGHTS_HOLDER_ROLE` (a revoked holder adds no key);
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
     * - `gtin` is a valid GTIN-14 bound to the caller (`bindGtin`); `lot` has 1-20 bytes;
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

        (address owner, ) = resolveGtinHolder(gtin);
        if (owner == address(0)) revert GtinNotBound(gtin);
        if (owner != msg.sender) revert GtinOwnedByAnotherHolder(gtin, owner, msg.sender);

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
     * - the batch is registered; the caller owns it and is still an accredited rights holder;
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
     * - the batch `(gtin, lot)` is registered; the caller owns it and is still accredited;
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

    /// @notice The accreditation record of `holder` (empty name if never accredited; non-zero
    /// `revokedAt` once revoked).
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

    /// @notice The rights holder `gtin` is bound to on its own (zero if unbound); see
    /// `resolveGtinHolder` for the holder that registers its batches.
    function gtinHolder(string calldata gtin) external view returns (address) {
        return _gtinHolders[keccak256(bytes(gtin))];
    }

    /// @notice The rights holder the company prefix `prefix` is bound to (zero if unbound).
    function companyPrefixHolder(string calldata prefix) external view returns (address) {
        return _prefixHolders[keccak256(bytes(prefix))];
    }

    /**
     * @notice The rights holder of `gtin`: its own binding if any, else that of the longest
     * bound company prefix it falls under (at most seven lookups), else zero.
     * @return holder The rights holder, zero if none.
     * @return prefixLength The length of the prefix that decided, zero when the GTIN's own
     * binding did (or nothing did).
     */
    function resolveGtinHolder(string calldata gtin) public view returns (address holder, uint256 prefixLength) {
        holder = _gtinHolders[keccak256(bytes(gtin))];
        if (holder != address(0) || bytes(gtin).length != 14) return (holder, 0);
        bytes calldata digits = bytes(gtin);
        // the prefix sits in the GTIN-13 after the indicator digit: digits[1 : 1 + length]
        for (uint256 length = 12; length >= 6; --length) {
            holder = _prefixHolders[keccak256(digits[1:1 + length])];
            if (holder != address(0)) return (holder, length);
        }
        return (address(0), 0);
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
     * A key is revoked at the earlier of its own revocation and its holder's: a revoked
     * holder's keys vouch for batches registered before the holder's revocation only.
     */
    function isSignerValidFor(address signer, address holder, uint40 registeredAt) public view returns (bool) {
        SignerKey memory key = _signerKeys[signer];
        if (key.holder != holder || holder == address(0)) return false;
        // zero means "never revoked": the key's end is the earlier of the two revocations
        uint40 end = _earlier(key.revokedAt, _rightsHolders[holder].revokedAt);
        if (end > 0) return key.addedAt <= registeredAt && registeredAt < end;
        return true;
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
        (address signer, ECDSA.RecoverError err, bytes32 errArg) = ECDSA.tryRecover(
            tagDigest(gtin, serial, lot),
            signature
        );
        // `errArg` only details an error (a bad length or s value): zero whenever there is none
        return err == ECDSA.RecoverError.NoError && errArg == bytes32(0) ? signer : address(0);
    }

    /// @dev Only the batch's holder, while accredited, changes its statuses: never the admin.
    function _requireBatchAuthority(bytes32 batchId) private view returns (Batch storage batch) {
        batch = _batches[batchId];
        address holder = batch.holder;
        if (holder == address(0)) revert UnknownBatch(batchId);
        if (msg.sender != holder) revert NotBatchHolder(batchId, msg.sender, holder);
        _requireActiveHolder(holder);
    }

    /// @dev The earlier of two revocation times, where zero means "not revoked".
    function _earlier(uint40 a, uint40 b) private pure returns (uint40) {
        if (a > 0 && b > 0) return a < b ? a : b;
        return a > 0 ? a : b;
    }

    /// @dev `account` holds `RIGHTS_HOLDER_ROLE` (revocation takes it away for good).
    function _requireActiveHolder(address account) private view {
        if (!hasRole(RIGHTS_HOLDER_ROLE, account)) {
            uint40 revokedAt = _rightsHolders[account].revokedAt;
            if (revokedAt != 0) revert RightsHolderIsRevoked(account, revokedAt);
            revert NotRightsHolder(account);
        }
    }

    /**
     * @notice Grants `role` to `account`. The accreditation roles are refused here: they are
     * granted with their records by `accreditRightsHolder` and `accreditCustomsAgency`.
     */
    function grantRole(
        bytes32 role,
        address account
    ) public override {
        if (role == RIGHTS_HOLDER_ROLE || role == CUSTOMS_ROLE) revert GrantThroughAccreditation(role);
        super.grantRole(role, account);
    }

    /// @dev Losing `RIGHTS_HOLDER_ROLE` (revokeRightsHolder, revokeRole, renounceRole) is a
    /// revocation: its time is recorded and it is final.
    function _revokeRole(bytes32 role, address account) internal override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        if (revoked && role == RIGHTS_HOLDER_ROLE) {
            uint40 now_ = uint40(block.timestamp);
            _rightsHolders[account].revokedAt = now_;
            emit RightsHolderRevoked(account, now_, msg.sender);
        }
    }

    function _requireTransition(bytes32 batchId, bytes32 leaf, Status previous, Status status) private pure {
        if (previous == Status.Destroyed) revert StatusIsFinal(batchId, leaf, previous);
        if (previous == status) revert StatusUnchanged(batchId, leaf, status);
    }

    /**
     * @dev 6 to 12 ASCII digits outside the GS1 Prefixes that number no company's products:
     * 00000 (GTIN-8 in a GTIN-13), 020-029, 040-049 and 200-299 (restricted circulation),
     * 050-059 and 981-999 (coupons), 980 (refund receipts).
     */
    function _requireValidCompanyPrefix(string calldata prefix) private pure {
        bytes calldata digits = bytes(prefix);
        if (digits.length < 6 || digits.length > 12) revert InvalidCompanyPrefix(prefix);
        for (uint256 i = 0; i < digits.length; ++i) {
            if (uint8(digits[i]) < 0x30 || uint8(digits[i]) > 0x39) revert InvalidCompanyPrefix(prefix);
        }
        // the first three digits, the GS1 Prefix (widened first: 9 * 100 overflows a uint8)
        uint256 gs1Prefix = 100 * uint256(uint8(digits[0]) - 0x30) + 10 * uint256(uint8(digits[1]) - 0x30);
        gs1Prefix += uint256(uint8(digits[2]) - 0x30);
        bool gtin8 = gs1Prefix == 0 && digits[3] == "0" && digits[4] == "0";
        bool reserved = (gs1Prefix >= 20 && gs1Prefix <= 29) ||
            (gs1Prefix >= 40 && gs1Prefix <= 59) ||
            (gs1Prefix >= 200 && gs1Prefix <= 299) ||
            gs1Prefix >= 980;
        if (gtin8 || reserved) revert InvalidCompanyPrefix(prefix);
    }

    /// @dev 14 ASCII digits whose last is the GS1 mod-10 check digit of the first 13.
    function _requireValidGtin(string calldata gtin) private pure {
        bytes calldata digits = bytes(gtin);
        if (digits.length != 14) revert InvalidGtin(gtin);
        uint256 sum = 0;
        for (uint256 i = 0; i < 14; ++i) {
            uint8 c = uint8(digits[i]);
            if (c < 0x30 || c > 0x39) revert InvalidGtin(gtin);
            if (i < 13) sum += (i % 2 == 0) ? (c - 0x30) * 3 : (c - 0x30);
        }
        if ((10 - (sum % 10)) % 10 != uint8(digits[13]) - 0x30) revert InvalidGtin(gtin);
    }
}
