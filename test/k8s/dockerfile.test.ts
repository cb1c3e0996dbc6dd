import { readFileSync } from "node:fs";
import { join } from "node:path";
import { NODE_VERSION } from "../../constructs/vm/versions";
import { ROOT } from "../helpers/processes";

const dockerfile = readFileSync(join(ROOT, "templates", "docker", "Dockerfile"), "utf8");
const ignore = readFileSync(join(ROOT, ".dockerignore"), "utf8");
const instructions = dockerfile.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"));

describe("Dockerfile", () => {
  it("builds in one stage and runs from another, both on the same pinned Node.js LTS as the VMs", () => {
    const bases = instructions.filter((l) => l.startsWith("FROM ")).map((l) => l.split(/\s+/)[1]);
    expect(bases).toEqual([`node:${NODE_VERSION}-bookworm-slim`, `node:${NODE_VERSION}-bookworm-slim`]);
    expect(instructions.filter((l) => l.startsWith("COPY --from=build"))).toHaveLength(2);
  });

  it("runs as a non-root user, single process, stopping on SIGTERM", () => {
    expect(instructions).toContain("USER 10001:10001");
    expect(instructions).toContain("STOPSIGNAL SIGTERM");
    expect(instructions[instructions.length - 1]).toBe('CMD ["node", "dist/main.js"]');
  });

  it("sends only the app's sources as build context", () => {
    expect(ignore.split("\n").filter((l) => l && !l.startsWith("#"))).toEqual([
      "*",
      "!app/package.json",
      "!app/tsconfig.json",
      "!app/src/**",
    ]);
    const copied = instructions.filter((l) => l.startsWith("COPY ") && !l.includes("--from")).flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(copied).toEqual(["app/package.json", "app/tsconfig.json", "app/src"]);
  });
});
