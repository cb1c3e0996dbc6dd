import { type Construct, S3Backend } from "../constructs/cdk";
import type { NodeScaleConfig } from "./config";

/**
 * Remote state when `state` is configured (S3 with a lock file, or DigitalOcean Spaces through its S3 API);
 * otherwise cdktf's default local state file. Credentials come from the environment, never the config.
 */
export function configureBackend(stack: Construct, state: NodeScaleConfig["state"], stackName: string): void {
  if (state === undefined || state.backend === "local") return;
  const backend = new S3Backend(stack, {
    bucket: state.bucket,
    key: `${state.keyPrefix}/${stackName}.tfstate`,
    region: state.region,
    encrypt: true,
    ...(state.kmsKeyId ? { kmsKeyId: state.kmsKeyId } : {}),
    ...(state.endpoint
      ? {
          // Spaces speaks S3 but is not AWS: skip the AWS-only checks.
          endpoints: { s3: state.endpoint },
          skipCredentialsValidation: true,
          skipRegionValidation: true,
          skipRequestingAccountId: true,
          skipMetadataApiCheck: true,
          skipS3Checksum: true,
          usePathStyle: false,
        }
      : {}),
  });
  // Terraform >= 1.10 locks with a lock object next to the state; cdktf 0.21's typed config predates it.
  backend.addOverride("use_lockfile", true);
}
