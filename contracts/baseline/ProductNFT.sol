// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/**
 * @title ProductNFT
 * @notice Benchmark baseline only: the "one NFT per product" provenance design, where every
 * genuine item is minted as an OpenZeppelin ERC-721 token. `borderledger bench enroll`
 * compares its gas per item with one Merkle root per batch.
 */
contract ProductNFT is ERC721 {
    /// @notice The only account allowed to mint.
    address public immutable minter;

    /// @notice The caller is not the minter.
    error NotMinter(address caller);

    constructor() ERC721("BorderLedger baseline product", "BLPROD") {
        minter = msg.sender;
    }

    /**
     * @notice Mints the token of one product item to `to`.
     *
     * Requirements:
     * - the caller is the minter; `tokenId` was never minted.
     */
    function mint(address to, uint256 tokenId) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        _mint(to, tokenId);
    }
}
