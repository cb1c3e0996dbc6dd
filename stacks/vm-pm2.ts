import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { type Construct, TerraformOutput } from "../constructs/cdk";
import type { AppBundle } from "../constructs/release/bundle";
import { type AlarmTarget, ServiceAlarms } from "../constructs/vm/ec2-alarms";
import type { MachineRole } from "../constructs/vm/ec2-common";
import { Ec2NodeHost } from "../constructs/vm/ec2-host";
import { MachineLogs } from "../constructs/vm/ec2-logs";
import { Ec2NodeGroup } from "../constructs/vm/ec2-node-group";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { NodeScaleStack } from "./nodescale-stack";
import { addVmService } from "./vm-service";

export interface VmPm2StackProps {
  readonly loaded: LoadedConfig;
  /** The built sample app (or yours), shipped as a release. */
  readonly bundle: AppBundle;
}

/**
 * `cdktf deploy vm-pm2`: Nginx + PM2 on one EC2 instance (`vm.machines` 1), or on an Auto Scaling group
 * behind an Application Load Balancer (2 or more), ending with the post-deploy health check.
 */
export class VmPm2Stack extends NodeScaleStack {
  /** The single machine, when `vm.machines` is 1. */
  readonly host?: Ec2NodeHost;
  /** The group behind the load balancer, when `vm.machines` is 2 or more. */
  readonly group?: Ec2NodeGroup;
  /** 5xx, unhealthy targets and CPU (a group); CPU and status checks (one machine). */
  readonly alarms: ServiceAlarms;
  /** PM2's and Nginx's logs in CloudWatch Logs. */
  readonly logs: MachineLogs;

  constructor(scope: Construct, id: string, props: VmPm2StackProps) {
    super(scope, id);
    const { config, spec } = props.loaded;
    const { aws, machines } = config.vm;
    configureBackend(this, config.state, id);
    new AwsProvider(this, "Aws", { region: aws.region, defaultTags: [{ tags: { "managed-by": "nodescale", "nodescale:stack": id } }] });
    const common = {
      spec,
      bundle: props.bundle,
      mode: config.vm.mode,
      instanceType: aws.instanceType,
      rootVolumeGiB: aws.rootVolumeGiB,
      clientLimits: config.vm.clientLimits,
      nodeMirror: config.vm.nodeMirror,
      keepReleases: config.vm.keepReleases,
    };
    // Logs and alarms are the same for one machine and a group: only the role and what is watched differ.
    const shipLogs = (role: MachineRole) =>
      new MachineLogs(this, "Logs", { name: spec.name, roleId: role.role.id, serviceTag: spec.name, retentionDays: aws.logRetentionDays });
    const watch = (target: AlarmTarget) =>
      new ServiceAlarms(this, "Alarms", {
        name: spec.name,
        target,
        ...(config.vm.alertEmail !== undefined ? { alertEmail: config.vm.alertEmail } : {}),
      });
    if (machines === 1) {
      const host = new Ec2NodeHost(this, "Host", {
        ...common,
        sshCidrs: aws.sshCidrs,
        vpcId: aws.vpcId,
        subnetId: aws.subnetId,
        acmeServer: config.vm.acmeServer,
        ...(config.vm.acmeEmail !== undefined ? { acmeEmail: config.vm.acmeEmail } : {}),
        ...(aws.route53ZoneId !== undefined && spec.domain !== undefined ? { route53ZoneId: aws.route53ZoneId } : {}),
      });
      this.host = host;
      addVmService(this, {
        spec,
        plan: host.plan,
        bundle: props.bundle,
        address: host.eip.publicIp,
        addressKind: "Nginx on the Elastic IP",
        outputs: { public_ip: host.eip.publicIp, instance_id: host.instance.id },
        machines,
        clientLimits: config.vm.clientLimits,
        triggers: { machine: host.instance.id },
        dependsOn: [host.eipAssociation],
      });
      this.logs = shipLogs(host.role);
      this.alarms = watch({ kind: "instance", instanceId: host.instance.id });
      return;
    }
    const group = new Ec2NodeGroup(this, "Group", {
      ...common,
      machines,
      ...(aws.route53ZoneId !== undefined ? { route53ZoneId: aws.route53ZoneId } : {}),
      minMachines: config.vm.minMachines,
      maxMachines: config.vm.maxMachines,
      targetCpuPercent: config.vm.targetCpuPercent,
    });
    this.group = group;
    this.logs = shipLogs(group.role);
    this.alarms = watch({
      kind: "group",
      loadBalancerArnSuffix: group.loadBalancer.arnSuffix,
      targetGroupArnSuffix: group.targetGroup.arnSuffix,
      autoScalingGroupName: group.group.name,
    });
    if (group.certificate !== undefined && aws.route53ZoneId === undefined) {
      new TerraformOutput(this, "certificate_validation", {
        value: group.certificate.domainValidationOptions,
        description: "Create these DNS records (and an alias of service.domain to the load balancer): the deploy waits until ACM validates",
      });
    }
    addVmService(this, {
      spec,
      plan: group.plan,
      bundle: props.bundle,
      address: group.loadBalancer.dnsName,
      addressKind: "the Application Load Balancer",
      outputs: { load_balancer_dns: group.loadBalancer.dnsName, autoscaling_group: group.group.name },
      machines,
      clientLimits: config.vm.clientLimits,
      triggers: { launch_template_version: group.launchTemplate.latestVersion.toString() },
      dependsOn: [group.group],
    });
  }
}
