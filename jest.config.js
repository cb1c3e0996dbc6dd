/** Jest with the SWC transform: no type-checking here (`npm run typecheck` does that), so tests start fast. */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  // The container tests need the Docker daemon `npm run test:containers` starts.
  testPathIgnorePatterns: process.env.NODESCALE_CONTAINERS === "1" ? ["/node_modules/"] : ["/node_modules/", "/test/containers/"],
  transform: { "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2022", parser: { syntax: "typescript" } } }] },
  setupFilesAfterEnv: ["<rootDir>/test/setup.ts"],
  testTimeout: 30_000,
};
