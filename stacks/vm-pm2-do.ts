import { DigitaloceanProvider } from "@cdktf/provider-digitalocean/lib/provider";
import type { Construct } from "../constructs/cdk";
import type { AppBundle } from "../constructs/vm/bundle";
import { DropletNodeHost } from "../constructs/vm/droplet-host";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { NodeScaleStack } from "./nodescale-stack";
import { addVmService } from "./vm-service";

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
    addVmService(this, {
      spec,
      plan: this.host.plan,
      bundle: props.bundle,
      publicIp: this.host.reservedIp.ipAddress,
      addressKind: "reserved IP",
      machineOutput: ["droplet_id", this.host.droplet.id],
      dependsOn: [this.host.reservedIp],
    });
  }
}
