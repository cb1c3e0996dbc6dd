/** Jest with the SWC transform: no type-checking here (`npm run typecheck` does that), so tests start fast. */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  // The container tests need the Docker daemon `npm run test:containers` starts; the Terraform tests need the providers
  // `npm run providers` builds (`npm run test:terraform`).
  testPathIgnorePatterns: [
    "/node_modules/",
    ...(process.env.NODESCALE_CONTAINERS === "1" ? [] : ["/test/containers/"]),
    ...(process.env.NODESCALE_TERRAFORM === "1" ? [] : ["/test/terraform/"]),
  ],
  transform: { "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2022", parser: { syntax: "typescript" } } }] },
  setupFilesAfterEnv: ["<rootDir>/test/setup.ts"],
  testTimeout: 30_000,
};
