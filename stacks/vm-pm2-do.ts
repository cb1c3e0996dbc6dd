import { DigitaloceanProvider } from "@cdktf/provider-digitalocean/lib/provider";
import type { Construct } from "../constructs/cdk";
import type { AppBundle } from "../constructs/release/bundle";
import { DropletNodeHost } from "../constructs/vm/droplet-host";
import { DropletNodeGroup } from "../constructs/vm/droplet-node-group";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { NodeScaleStack } from "./nodescale-stack";
import { addVmService } from "./vm-service";

export interface VmPm2DoStackProps {
  readonly loaded: LoadedConfig;
  /** The built app: pushed over SSH with vm.digitalocean.deployKey, else inside the Droplets' user data. */
  readonly bundle: AppBundle;
}

/**
 * `cdktf deploy vm-pm2-do`: Nginx + PM2 on one Droplet (`vm.machines` 1), or on several behind a DigitalOcean
 * Load Balancer. The token comes from DIGITALOCEAN_TOKEN.
 */
export class VmPm2DoStack extends NodeScaleStack {
  /** The single Droplet, when `vm.machines` is 1. */
  readonly host?: DropletNodeHost;
  /** The Droplets behind the load balancer, when `vm.machines` is 2 or more. */
  readonly group?: DropletNodeGroup;

  constructor(scope: Construct, id: string, props: VmPm2DoStackProps) {
    super(scope, id);
    const { config, spec } = props.loaded;
    const d = config.vm.digitalocean;
    const machines = config.vm.machines;
    configureBackend(this, config.state, id);
    new DigitaloceanProvider(this, "DigitalOcean", {});
    const common = {
      spec,
      bundle: props.bundle,
      mode: config.vm.mode,
      region: d.region,
      size: d.size,
      sshKeyFingerprints: d.sshKeyFingerprints,
      sshCidrs: d.sshCidrs,
      sshRelease: d.deployKey,
      clientLimits: config.vm.clientLimits,
      nodeMirror: config.vm.nodeMirror,
      keepReleases: config.vm.keepReleases,
    };
    if (machines === 1) {
      const host = new DropletNodeHost(this, "Host", {
        ...common,
        acmeServer: config.vm.acmeServer,
        ...(config.vm.acmeEmail !== undefined ? { acmeEmail: config.vm.acmeEmail } : {}),
      });
      this.host = host;
      addVmService(this, {
        spec,
        plan: host.plan,
        bundle: host.userData.release,
        address: host.reservedIp.ipAddress,
        addressKind: "Nginx on the reserved IP",
        outputs: { public_ip: host.reservedIp.ipAddress, droplet_id: host.droplet.id },
        machines,
        clientLimits: config.vm.clientLimits,
        triggers: { machine: host.droplet.id },
        dependsOn: [host.reservedIpAssignment, ...(host.release ? [host.release.resource] : [])],
      });
      return;
    }
    const group = new DropletNodeGroup(this, "Group", { ...common, machines });
    this.group = group;
    addVmService(this, {
      spec,
      plan: group.plan,
      bundle: group.userData.release,
      address: group.loadBalancer.ip,
      addressKind: "the DigitalOcean Load Balancer",
      outputs: { load_balancer_ip: group.loadBalancer.ip },
      machines,
      clientLimits: config.vm.clientLimits,
      triggers: Object.fromEntries(group.droplets.map((d, i) => [`machine_${i + 1}`, d.id])),
      dependsOn: [...group.inRotation.map((c) => c.resource), ...group.releases.map((r) => r.resource)],
    });
  }
}
