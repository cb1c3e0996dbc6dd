import { createHash } from "node:crypto";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket";
import { S3BucketOwnershipControls } from "@cdktf/provider-aws/lib/s3-bucket-ownership-controls";
import { S3BucketPolicy } from "@cdktf/provider-aws/lib/s3-bucket-policy";
import { S3BucketPublicAccessBlock } from "@cdktf/provider-aws/lib/s3-bucket-public-access-block";
import { S3BucketServerSideEncryptionConfigurationA } from "@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration";
import { S3BucketVersioningA } from "@cdktf/provider-aws/lib/s3-bucket-versioning";
import { S3Object } from "@cdktf/provider-aws/lib/s3-object";
import { Construct, TerraformAsset } from "../cdk";
import { type AppBundle, bundleFile, synthFile } from "../release/bundle";
import { machineAgentSource } from "./machine-plan";

export interface ReleaseBucketProps {
  /** Service name, used as the bucket name prefix. */
  readonly name: string;
  /** The release to upload. */
  readonly bundle: AppBundle;
}

/**
 * A private, encrypted, versioned S3 bucket holding app releases under releases/<sha256>.tar.gz, and the machine
 * agent under machine/agent-<sha256>.js (too big for EC2's user data beside everything else).
 */
export class ReleaseBucket extends Construct {
  readonly bucket: S3Bucket;
  readonly object: S3Object;
  readonly objectUri: string;
  /** The machine agent the machines fetch at provisioning. */
  readonly agentObject: S3Object;
  /** Its key in the bucket (machine/agent-<sha256>.js). */
  readonly agentKey: string;
  readonly agentSha256: string;

  constructor(scope: Construct, id: string, props: ReleaseBucketProps) {
    super(scope, id);
    this.bucket = new S3Bucket(this, "Bucket", { bucketPrefix: `${props.name}-releases-`, forceDestroy: true });
    new S3BucketPublicAccessBlock(this, "PublicAccessBlock", {
      bucket: this.bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    new S3BucketOwnershipControls(this, "Ownership", { bucket: this.bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } });
    new S3BucketServerSideEncryptionConfigurationA(this, "Encryption", {
      bucket: this.bucket.id,
      rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }],
    });
    new S3BucketVersioningA(this, "Versioning", { bucket: this.bucket.id, versioningConfiguration: { status: "Enabled" } });
    const tlsOnly = new DataAwsIamPolicyDocument(this, "TlsOnly", {
      statement: [
        {
          sid: "DenyInsecureTransport",
          effect: "Deny",
          actions: ["s3:*"],
          principals: [{ type: "*", identifiers: ["*"] }],
          resources: [this.bucket.arn, `${this.bucket.arn}/*`],
          condition: [{ test: "Bool", variable: "aws:SecureTransport", values: ["false"] }],
        },
      ],
    });
    new S3BucketPolicy(this, "Policy", { bucket: this.bucket.id, policy: tlsOnly.json });

    // The asset is copied into the stack's synth folder, so Terraform uploads exactly these bytes.
    const asset = new TerraformAsset(this, "Bundle", { path: bundleFile(this, props.bundle) });
    const key = `releases/${props.bundle.sha256}.tar.gz`;
    this.object = new S3Object(this, "Object", {
      bucket: this.bucket.id,
      key,
      source: asset.path,
      sourceHash: props.bundle.sha256,
      contentType: "application/gzip",
      serverSideEncryption: "AES256",
    });
    this.objectUri = `s3://${this.bucket.bucket}/${key}`;

    const agent = machineAgentSource();
    this.agentSha256 = createHash("sha256").update(agent).digest("hex");
    const agentAsset = new TerraformAsset(this, "Agent", { path: synthFile(this, `agent-${this.agentSha256}.js`, agent) });
    const agentKey = `machine/agent-${this.agentSha256}.js`;
    this.agentKey = agentKey;
    this.agentObject = new S3Object(this, "AgentObject", {
      bucket: this.bucket.id,
      key: agentKey,
      source: agentAsset.path,
      sourceHash: this.agentSha256,
      contentType: "application/javascript",
      serverSideEncryption: "AES256",
    });
  }
}
