import { ContainerRegistry } from "@cdktf/provider-digitalocean/lib/container-registry";
import { DataDigitaloceanKubernetesVersions } from "@cdktf/provider-digitalocean/lib/data-digitalocean-kubernetes-versions";
import { KubernetesCluster } from "@cdktf/provider-digitalocean/lib/kubernetes-cluster";
import { Vpc } from "@cdktf/provider-digitalocean/lib/vpc";
import { Construct } from "../cdk";
import { invalidProp } from "../service/errors";

/** DoksNodeCluster's defaults: the constructor, the props' JSDoc and the golden path's config schema all read these. */
export const DOKS_CLUSTER_DEFAULTS = {
  // The minor DOKS offers as current as of 2026-11; the patch follows DOKS inside it.
  versionPrefix: "1.35.",
  nodeSize: "s-2vcpu-4gb",
  minNodes: 2,
  maxNodes: 5,
  haControlPlane: false,
  vpcCidr: "10.41.0.0/20",
  maintenanceDay: "sunday",
  maintenanceStartTime: "04:00",
  createRegistry: true,
} as const;

export interface DoksNodeClusterProps {
  /** Cluster name. */
  readonly name: string;
  /** Region slug, e.g. "nyc3". */
  readonly region: string;
  /**
   * Minor version prefix: the newest DOKS patch of that minor is used, the minor stays pinned.
   * @default "1.35."
   */
  readonly versionPrefix?: string;
  /**
   * Node size slug.
   * @default "s-2vcpu-4gb"
   */
  readonly nodeSize?: string;
  /**
   * Fewest nodes the pool's autoscaler keeps.
   * @default 2
   */
  readonly minNodes?: number;
  /**
   * Most nodes the pool's autoscaler may run.
   * @default 5
   */
  readonly maxNodes?: number;
  /**
   * Highly available control plane (billed).
   * @default false
   */
  readonly haControlPlane?: boolean;
  /**
   * CIDR of the cluster's VPC.
   * @default "10.41.0.0/20"
   */
  readonly vpcCidr?: string;
  /**
   * Day of the weekly maintenance window (patch upgrades), or "any".
   * @default "sunday"
   */
  readonly maintenanceDay?: string;
  /**
   * Start of the maintenance window, a whole hour in UTC.
   * @default "04:00"
   */
  readonly maintenanceStartTime?: string;
  /**
   * Create a container registry (one per account) and wire it to the cluster.
   * @default true
   */
  readonly createRegistry?: boolean;
}

/** A DOKS cluster in its own VPC: pinned minor, patch auto-upgrades in a maintenance window, autoscaled nodes. */
export class DoksNodeCluster extends Construct {
  /** The DOKS cluster and its autoscaling node pool. */
  readonly cluster: KubernetesCluster;
  /** The container registry the image is pushed to; undefined when the image is built elsewhere. */
  readonly registry?: ContainerRegistry;

  constructor(scope: Construct, id: string, props: DoksNodeClusterProps) {
    super(scope, id);
    const nodeSize = props.nodeSize ?? DOKS_CLUSTER_DEFAULTS.nodeSize;
    const minNodes = props.minNodes ?? DOKS_CLUSTER_DEFAULTS.minNodes;
    const maxNodes = props.maxNodes ?? DOKS_CLUSTER_DEFAULTS.maxNodes;
    const haControlPlane = props.haControlPlane ?? DOKS_CLUSTER_DEFAULTS.haControlPlane;
    const vpcCidr = props.vpcCidr ?? DOKS_CLUSTER_DEFAULTS.vpcCidr;
    const maintenanceDay = props.maintenanceDay ?? DOKS_CLUSTER_DEFAULTS.maintenanceDay;
    const maintenanceStartTime = props.maintenanceStartTime ?? DOKS_CLUSTER_DEFAULTS.maintenanceStartTime;
    const createRegistry = props.createRegistry ?? DOKS_CLUSTER_DEFAULTS.createRegistry;
    const versionPrefix = props.versionPrefix ?? DOKS_CLUSTER_DEFAULTS.versionPrefix;
    if (!/^1\.\d{2}\.$/.test(versionPrefix)) {
      invalidProp("DoksNodeCluster", "versionPrefix", versionPrefix, 'a minor version prefix such as "1.35."');
    }
    if (!Number.isInteger(minNodes) || minNodes < 1 || maxNodes < minNodes) {
      invalidProp("DoksNodeCluster", "minNodes", minNodes, `must be a whole number from 1 to maxNodes (${maxNodes})`);
    }

    const vpc = new Vpc(this, "Vpc", { name: `${props.name}-vpc`, region: props.region, ipRange: vpcCidr });
    const versions = new DataDigitaloceanKubernetesVersions(this, "Versions", { versionPrefix: versionPrefix });
    if (createRegistry) {
      this.registry = new ContainerRegistry(this, "Registry", { name: props.name, subscriptionTierSlug: "basic", region: props.region });
    }
    this.cluster = new KubernetesCluster(this, "Cluster", {
      name: props.name,
      region: props.region,
      version: versions.latestVersion,
      vpcUuid: vpc.id,
      autoUpgrade: true,
      surgeUpgrade: true,
      ha: haControlPlane,
      registryIntegration: createRegistry,
      maintenancePolicy: { day: maintenanceDay, startTime: maintenanceStartTime },
      // No node_count: the autoscaler owns it, so an apply never fights it.
      nodePool: { name: `${props.name}-pool`, size: nodeSize, autoScale: true, minNodes, maxNodes, tags: ["nodescale"] },
      tags: ["nodescale", props.name],
      dependsOn: this.registry ? [this.registry] : [],
    });
  }
}
