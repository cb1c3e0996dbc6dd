import { readFileSync } from "node:fs";
import { join } from "node:path";
import { POST_DEPLOY_HEALTH_CHECK_DEFAULTS } from "../../constructs/health/post-deploy-health-check";
import { CLUSTER_ADDONS_DEFAULTS } from "../../constructs/k8s/cluster-addons";
import { DOKS_CLUSTER_DEFAULTS } from "../../constructs/k8s/doks-cluster";
import { EKS_CLUSTER_DEFAULTS } from "../../constructs/k8s/eks-cluster";
import { NODE_WORKLOAD_DEFAULTS } from "../../constructs/k8s/node-workload";
import { DROPLET_DEFAULTS, DROPLET_NODE_GROUP_DEFAULTS } from "../../constructs/vm/droplet-common";
import { EC2_MACHINE_DEFAULTS, EC2_NODE_GROUP_DEFAULTS } from "../../constructs/vm/ec2-common";
import { LOCAL_TARGET_DEFAULTS } from "../../constructs/vm/local-target";
import { parseConfig } from "../../stacks/config";
import { ROOT } from "../helpers/processes";

type Defaults = Readonly<Record<string, string | number | boolean>>;

/** Each props interface and the defaults constants its fields take their values from. */
const DOCUMENTED: readonly { file: string; props: string; defaults: Defaults[] }[] = [
  { file: "constructs/k8s/node-workload.ts", props: "NodeWorkloadProps", defaults: [NODE_WORKLOAD_DEFAULTS] },
  { file: "constructs/k8s/eks-cluster.ts", props: "EksNodeClusterProps", defaults: [EKS_CLUSTER_DEFAULTS] },
  { file: "constructs/k8s/doks-cluster.ts", props: "DoksNodeClusterProps", defaults: [DOKS_CLUSTER_DEFAULTS] },
  { file: "constructs/k8s/cluster-addons.ts", props: "ClusterAddonsProps", defaults: [CLUSTER_ADDONS_DEFAULTS] },
  { file: "constructs/vm/ec2-host.ts", props: "Ec2NodeHostProps", defaults: [EC2_MACHINE_DEFAULTS] },
  { file: "constructs/vm/ec2-node-group.ts", props: "Ec2NodeGroupProps", defaults: [EC2_MACHINE_DEFAULTS, EC2_NODE_GROUP_DEFAULTS] },
  { file: "constructs/vm/droplet-common.ts", props: "DropletMachineProps", defaults: [DROPLET_DEFAULTS] },
  { file: "constructs/vm/droplet-node-group.ts", props: "DropletNodeGroupProps", defaults: [DROPLET_NODE_GROUP_DEFAULTS] },
  { file: "constructs/vm/local-target.ts", props: "LocalTargetProps", defaults: [LOCAL_TARGET_DEFAULTS] },
  {
    file: "constructs/health/post-deploy-health-check.ts",
    props: "PostDeployHealthCheckProps",
    defaults: [POST_DEPLOY_HEALTH_CHECK_DEFAULTS],
  },
];

/** `@default` of every optional field of one exported props interface, as written in its JSDoc. */
function documentedDefaults(file: string, props: string): Map<string, string> {
  const source = readFileSync(join(ROOT, file), "utf8");
  const start = source.indexOf(`export interface ${props} `);
  if (start < 0) throw new Error(`${file} has no exported interface ${props}`);
  const body = source.slice(start, source.indexOf("\n}\n", start));
  const found = new Map<string, string>();
  for (const match of body.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*readonly (\w+)\?:/g)) {
    const tag = /@default (.+)/.exec(match[1]);
    if (tag) found.set(match[2], tag[1].trim());
  }
  return found;
}

describe("one home for each default", () => {
  it.each(DOCUMENTED)("$props documents each default with the value its constructor uses", ({ file, props, defaults }) => {
    const documented = documentedDefaults(file, props);
    const wrong: string[] = [];
    for (const [field, value] of Object.entries(Object.assign({}, ...defaults) as Defaults)) {
      const written = documented.get(field);
      if (written !== JSON.stringify(value))
        wrong.push(`${field}: JSDoc says ${written ?? "nothing"}, the constructor uses ${JSON.stringify(value)}`);
    }
    expect(wrong).toEqual([]);
  });

  it("gives an empty nodescale.config.json the constructs' own defaults", () => {
    const { config } = parseConfig({});
    const k = config.kubernetes;
    expect({
      minReplicas: k.minReplicas,
      maxReplicas: k.maxReplicas,
      targetCpuPercent: k.targetCpuPercent,
      preStopSeconds: k.preStopSeconds,
    }).toEqual({
      minReplicas: NODE_WORKLOAD_DEFAULTS.minReplicas,
      maxReplicas: NODE_WORKLOAD_DEFAULTS.maxReplicas,
      targetCpuPercent: NODE_WORKLOAD_DEFAULTS.targetCpuPercent,
      preStopSeconds: NODE_WORKLOAD_DEFAULTS.preStopSeconds,
    });
    const { version, zones, vpcCidr, natGateways, nodeInstanceType, minNodes, desiredNodes, maxNodes } = EKS_CLUSTER_DEFAULTS;
    expect(k.eks).toMatchObject({ version, zones, vpcCidr, natGateways, nodeInstanceType, minNodes, desiredNodes, maxNodes });
    const doks = DOKS_CLUSTER_DEFAULTS;
    expect(k.doks).toMatchObject({
      versionPrefix: doks.versionPrefix,
      nodeSize: doks.nodeSize,
      minNodes: doks.minNodes,
      maxNodes: doks.maxNodes,
      haControlPlane: doks.haControlPlane,
      vpcCidr: doks.vpcCidr,
      maintenanceDay: doks.maintenanceDay,
      maintenanceStartTime: doks.maintenanceStartTime,
    });
    expect(config.vm).toMatchObject({ mode: EC2_MACHINE_DEFAULTS.mode, targetCpuPercent: EC2_NODE_GROUP_DEFAULTS.targetCpuPercent });
    expect(config.vm.aws).toMatchObject({
      instanceType: EC2_MACHINE_DEFAULTS.instanceType,
      rootVolumeGiB: EC2_MACHINE_DEFAULTS.rootVolumeGiB,
    });
    expect(config.vm.digitalocean).toMatchObject({ region: DROPLET_DEFAULTS.region, size: DROPLET_DEFAULTS.size });
    expect(config.local).toMatchObject({ port: LOCAL_TARGET_DEFAULTS.port, machines: LOCAL_TARGET_DEFAULTS.machines });
  });
});
