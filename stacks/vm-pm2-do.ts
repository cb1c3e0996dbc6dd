import { DigitaloceanProvider } from "@cdktf/provider-digitalocean/lib/provider";
import { type Construct, TerraformOutput } from "../constructs/cdk";
import { PostDeployHealthCheck } from "../constructs/health/post-deploy-health-check";
import type { AppBundle } from "../constructs/vm/bundle";
import { DropletNodeHost } from "../constructs/vm/droplet-host";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { NodeScaleStack } from "./nodescale-stack";

export interface VmPm2DoStackProps {
  readonly loaded: LoadedConfig;
  /** The built app, shipped inside the Droplet's user data. */
  readonly bundle: AppBundle;
}

/** `cdktf deploy vm-pm2-do`: Nginx + PM2 on one Droplet. The token comes from DIGITALOCEAN_TOKEN. */
export class VmPm2DoStack extends NodeScaleStack {
  readonly host: DropletNodeHost;

  constructor(scope: Construct, id: string, props: VmPm2DoStackProps) {
    super(scope, id);
    const { config, spec } = props.loaded;
    const d = config.vm.digitalocean;
    configureBackend(this, config.state, id);
    new DigitaloceanProvider(this, "DigitalOcean", {});
    this.host = new DropletNodeHost(this, "Host", {
      spec,
      bundle: props.bundle,
      mode: config.vm.mode,
      region: d.region,
      size: d.size,
      sshKeyFingerprints: d.sshKeyFingerprints,
      sshCidrs: d.sshCidrs,
    });
    const url = `http://${this.host.reservedIp.ipAddress}`;
    new TerraformOutput(this, "url", { value: url, description: "Base URL of the service (Nginx on the reserved IP)" });
    new TerraformOutput(this, "public_ip", { value: this.host.reservedIp.ipAddress });
    new TerraformOutput(this, "droplet_id", { value: this.host.droplet.id });
    new PostDeployHealthCheck(this, "HealthCheck", {
      url,
      spec,
      expectWorkers: this.host.plan.expectedProcesses,
      expectRelease: props.bundle.sha256,
      timeoutSeconds: 900,
      triggers: { droplet: this.host.droplet.id },
      dependsOn: [this.host.reservedIp],
    });
  }
}
