import { Image } from "@cdktf/provider-docker/lib/image";
import { RegistryImage } from "@cdktf/provider-docker/lib/registry-image";
import { Construct } from "../cdk";
import { refuseAtPlan } from "../refuse-at-plan";
import { invalidProp } from "../service/errors";

export interface AppImageProps {
  /** Repository to push to, e.g. the ECR repository URL or registry.digitalocean.com/<registry>/<name>. */
  readonly repository: string;
  /** Fixed tag: the release's content hash, so the same app is never pushed twice under new names. */
  readonly tag: string;
  /** Build context (the project root). */
  readonly contextDir: string;
  /**
   * Dockerfile, relative to the context.
   * @default "templates/docker/Dockerfile"
   */
  readonly dockerfile?: string;
  /**
   * A reason this image cannot be built: `terraform plan` of the stack stops with it, before anything changes.
   * @default - none
   */
  readonly refusal?: string;
}

/** Builds the bundled app with the Docker provider and pushes it; needs a Docker daemon where you deploy. */
export class AppImage extends Construct {
  /** The pushed image, `<repository>:<tag>`. */
  readonly imageRef: string;
  /** The push: what a workload waits for. */
  readonly pushed: RegistryImage;

  constructor(scope: Construct, id: string, props: AppImageProps) {
    super(scope, id);
    const dockerfile = props.dockerfile ?? "templates/docker/Dockerfile";
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(props.tag) || props.tag === "latest") {
      invalidProp("AppImage", "tag", props.tag, 'a fixed tag (letters, digits, . _ -), not "latest"');
    }
    this.imageRef = `${props.repository}:${props.tag}`;
    const image = new Image(this, "Build", {
      name: this.imageRef,
      buildAttribute: {
        context: props.contextDir,
        dockerfile,
        platform: "linux/amd64",
        label: { "org.opencontainers.image.revision": props.tag },
      },
      triggers: { tag: props.tag },
      keepLocally: true,
      ...(props.refusal !== undefined ? { lifecycle: { precondition: [refuseAtPlan(this, "Refusal", props.refusal)] } } : {}),
    });
    this.pushed = new RegistryImage(this, "Push", { name: image.name, keepRemotely: true, triggers: { tag: props.tag } });
  }
}
