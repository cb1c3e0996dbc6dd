import { nodeImage } from "../service/node-releases";
import type { NodeServiceSpec } from "../service/spec";
import { renderTemplate } from "../template";

/** The UID (and GID) the image runs as; the pod's securityContext uses the same. */
export const IMAGE_USER = 10001;

/** The name the rendered Dockerfile takes inside the staged build context (beside the app's own files). */
export const STAGED_DOCKERFILE = "nodescale.Dockerfile";

/**
 * The Dockerfile of an app's image: multi-stage, `npm ci`, the build script when there is one, production
 * dependencies only, root-owned code run as a non-root user, `node <start>` as PID 1, on the Node.js release the
 * spec pins. Pure.
 */
export function renderDockerfile(spec: NodeServiceSpec, build: string | false): string {
  // Exec form with JSON strings: no shell ever parses the script name or the entry path.
  return renderTemplate("docker/Dockerfile", {
    name: spec.name,
    nodeImage: nodeImage(spec.nodeRelease),
    buildStep: build === false ? "# No build script." : `RUN ["npm", "run", ${JSON.stringify(build)}]`,
    start: JSON.stringify(spec.start),
    port: spec.port,
    user: IMAGE_USER,
  });
}
