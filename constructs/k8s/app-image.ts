import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Image } from "@cdktf/provider-docker/lib/image";
import { RegistryImage } from "@cdktf/provider-docker/lib/registry-image";
import { App, AssetType, Construct, TerraformAsset } from "../cdk";
import { refuseAtPlan } from "../refuse-at-plan";
import { resolveBuildScript, stageSources } from "../release/release-pack";
import { invalidProp } from "../service/errors";
import type { NodeServiceSpec } from "../service/spec";
import { renderDockerfile, STAGED_DOCKERFILE } from "./dockerfile";

export interface AppImageProps {
  /** The service: its entry file, build script, port and Node.js release shape the Dockerfile. */
  readonly spec: NodeServiceSpec;
  /** The app's folder (package.json, lock file, sources): the same folder its releases are packed from. */
  readonly appDir: string;
  /** Repository to push to, e.g. the ECR repository URL or registry.digitalocean.com/<registry>/<name>. */
  readonly repository: string;
  /** Fixed tag: the release's content hash, so the same app is never pushed twice under new names. */
  readonly tag: string;
  /**
   * A reason this image cannot be built: `terraform plan` of the stack stops with it, before anything changes.
   * @default - none
   */
  readonly refusal?: string;
}

/**
 * Builds an app's image with the Docker provider and pushes it; needs a Docker daemon where you deploy. The build
 * context is the app's sources as a release takes them (staged at synth into the stack's assets, so a local
 * `node_modules` or `.env` never reaches the daemon) with NodeScale's Dockerfile rendered for the spec.
 */
export class AppImage extends Construct {
  /** The pushed image, `<repository>:<tag>`. */
  readonly imageRef: string;
  /**
   * The pushed image by its digest, `<repository>@sha256:...`: what pods run, because a tag can be moved (DOCR has no
   * tag immutability) and a digest cannot.
   */
  readonly digestRef: string;
  /** The local build. */
  readonly image: Image;
  /** The push: what a workload waits for. */
  readonly pushed: RegistryImage;
  /** The Dockerfile the image is built from. */
  readonly dockerfile: string;
  /** The build context: the staged sources and the Dockerfile, copied into the stack's assets at synth. */
  readonly context: TerraformAsset;
  /** The app's files in the build context (besides the Dockerfile), sorted. */
  readonly files: readonly string[];

  constructor(scope: Construct, id: string, props: AppImageProps) {
    super(scope, id);
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(props.tag) || props.tag === "latest") {
      invalidProp("AppImage", "tag", props.tag, 'a fixed tag (letters, digits, . _ -), not "latest"');
    }
    this.imageRef = `${props.repository}:${props.tag}`;
    this.dockerfile = renderDockerfile(props.spec, resolveBuildScript(props.appDir, props.spec.build));

    // Staged beside the app's synth output (as release files are), then copied into the stack's assets at synth.
    const staged = join(App.of(this).outdir, "image-contexts", this.node.addr);
    rmSync(staged, { recursive: true, force: true });
    mkdirSync(staged, { recursive: true });
    this.files = stageSources(props.appDir, staged);
    writeFileSync(join(staged, STAGED_DOCKERFILE), this.dockerfile);
    this.context = new TerraformAsset(this, "Context", { path: staged, type: AssetType.DIRECTORY });

    this.image = new Image(this, "Build", {
      name: this.imageRef,
      buildAttribute: {
        context: this.context.path,
        dockerfile: STAGED_DOCKERFILE,
        platform: "linux/amd64",
        label: { "org.opencontainers.image.revision": props.tag },
      },
      triggers: { tag: props.tag },
      keepLocally: true,
      ...(props.refusal !== undefined ? { lifecycle: { precondition: [refuseAtPlan(this, "Refusal", props.refusal)] } } : {}),
    });
    this.pushed = new RegistryImage(this, "Push", { name: this.image.name, keepRemotely: true, triggers: { tag: props.tag } });
    this.digestRef = `${props.repository}@${this.pushed.sha256Digest}`;
  }
}
