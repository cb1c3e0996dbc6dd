import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import type { Construct } from "../constructs/cdk";
import type { AppBundle } from "../constructs/vm/bundle";
import { Ec2NodeHost } from "../constructs/vm/ec2-host";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { NodeScaleStack } from "./nodescale-stack";
import { addVmService } from "./vm-service";

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
    addVmService(this, {
      spec,
      plan: this.host.plan,
      bundle: props.bundle,
      publicIp: this.host.eip.publicIp,
      addressKind: "Elastic IP",
      machineOutput: ["instance_id", this.host.instance.id],
      dependsOn: [this.host.eip],
    });
  }
}
