// Hardhat 2 configuration for the BorderLedger contracts.
//
// These machines cannot download Solidity compilers, so the compiler is the npm `solc`
// package (solc-js), pinned in package.json to SOLC_VERSION below. Compilation fails loudly
// if the two ever drift apart instead of silently fetching another build.
const path = require("path");
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");

const SOLC_VERSION = "0.8.28";

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args, hre, runSuper) => {
  if (args.solcVersion !== SOLC_VERSION) {
    return runSuper();
  }
  const installed = require("solc/package.json").version;
  if (installed !== SOLC_VERSION) {
    throw new Error(`npm solc is ${installed}, hardhat.config.js wants ${SOLC_VERSION}: run npm ci`);
  }
  const compilerPath = path.join(path.dirname(require.resolve("solc/package.json")), "soljson.js");
  return { compilerPath, isSolcJs: true, version: SOLC_VERSION, longVersion: require("solc").version() };
});

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      optimizer: { enabled: true, runs: 10000 },
      evmVersion: "cancun",
    },
  },
  paths: {
    sources: "./contracts",
    artifacts: "./artifacts",
    cache: "./.hardhat-cache",
  },
  networks: {
    hardhat: {
      chainId: 31337,
      hardfork: "cancun",
      allowUnlimitedContractSize: false,
      mining: { auto: true },
    },
  },
};
