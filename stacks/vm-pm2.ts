import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { type Construct, TerraformOutput } from "../constructs/cdk";
import { PostDeployHealthCheck } from "../constructs/health/post-deploy-health-check";
import type { AppBundle } from "../constructs/vm/bundle";
import { Ec2NodeHost } from "../constructs/vm/ec2-host";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { NodeScaleStack } from "./nodescale-stack";

export interface VmPm2StackProps {
  readonly loaded: LoadedConfig;
  /** The built sample app (or yours), shipped as a release. */
  readonly bundle: AppBundle;
}

/** `cdktf deploy vm-pm2`: Nginx + PM2 on one EC2 instance, ending with the post-deploy health check. */
export class VmPm2Stack extends NodeScaleStack {
  readonly host: Ec2NodeHost;

  constructor(scope: Construct, id: string, props: VmPm2StackProps) {
    super(scope, id);
    const { config, spec } = props.loaded;
    const aws = config.vm.aws;
    configureBackend(this, config.state, id);
    new AwsProvider(this, "Aws", { region: aws.region, defaultTags: [{ tags: { "managed-by": "nodescale", "nodescale:stack": id } }] });
    this.host = new Ec2NodeHost(this, "Host", {
      spec,
      bundle: props.bundle,
      mode: config.vm.mode,
      instanceType: aws.instanceType,
      sshCidrs: aws.sshCidrs,
      vpcId: aws.vpcId,
      subnetId: aws.subnetId,
      rootVolumeGiB: aws.rootVolumeGiB,
    });
    const url = `http://${this.host.eip.publicIp}`;
    new TerraformOutput(this, "url", { value: url, description: "Base URL of the service (Nginx on the Elastic IP)" });
    new TerraformOutput(this, "public_ip", { value: this.host.eip.publicIp });
    new TerraformOutput(this, "instance_id", { value: this.host.instance.id });
    new PostDeployHealthCheck(this, "HealthCheck", {
      url,
      spec,
      expectWorkers: this.host.plan.expectedProcesses,
      expectRelease: props.bundle.sha256,
      // A new machine installs Node.js, Nginx and PM2 first; a release rollout through SSM is quicker.
      timeoutSeconds: 900,
      triggers: { instance: this.host.instance.id },
      dependsOn: [this.host.eip],
    });
  }
}
