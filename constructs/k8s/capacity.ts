/** CPU and memory of one node, as sold. */
export interface NodeShape {
  readonly cpuMillicores: number;
  readonly memoryMiB: number;
}

/** Share of a node NodeScale counts on for the workload: the rest goes to the kubelet, the system and daemon sets. */
export const USABLE_NODE_SHARE = 0.8;

/** A Droplet size slug's shape, from the slug itself ("s-2vcpu-4gb", "g-4vcpu-16gb"); undefined when it names none. */
export function dropletShape(slug: string): NodeShape | undefined {
  const match = /(\d+)vcpu-(\d+)gb/.exec(slug);
  if (match === null) return undefined;
  return { cpuMillicores: Number(match[1]) * 1000, memoryMiB: Number(match[2]) * 1024 };
}

const EC2_SIZES: Readonly<Record<string, number>> = { medium: 2, large: 2, xlarge: 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32 };
// GiB per vCPU by family letter: general purpose 4, compute 2, memory 8 (t-family: medium 4 GiB, then 4 per vCPU).
const EC2_GIB_PER_VCPU: Readonly<Record<string, number>> = { t: 4, m: 4, c: 2, r: 8 };

/** An EC2 instance type's shape for the common t/m/c/r families (t3.medium, m6i.large, ...); undefined otherwise. */
export function ec2Shape(instanceType: string): NodeShape | undefined {
  const match = /^([tmcr])\d+[a-z]*\.(medium|large|xlarge|2xlarge|4xlarge|8xlarge)$/.exec(instanceType);
  if (match === null) return undefined;
  const vcpus = EC2_SIZES[match[2]];
  if (match[2] === "medium") return match[1] === "t" ? { cpuMillicores: 2000, memoryMiB: 4096 } : undefined;
  return { cpuMillicores: vcpus * 1000, memoryMiB: vcpus * EC2_GIB_PER_VCPU[match[1]] * 1024 };
}

/**
 * Why `maxReplicas` pods with these requests would not all fit on `maxNodes` nodes of this shape (each node's
 * USABLE_NODE_SHARE), or undefined when they fit. One line, with the numbers.
 */
export function podsDoNotFit(options: {
  readonly maxReplicas: number;
  readonly cpuMillicores: number;
  readonly memoryMiB: number;
  readonly maxNodes: number;
  readonly node: NodeShape;
  readonly nodeName: string;
  readonly maxNodesField: string;
}): string | undefined {
  const { node } = options;
  const perNode = Math.floor(
    Math.min((node.cpuMillicores * USABLE_NODE_SHARE) / options.cpuMillicores, (node.memoryMiB * USABLE_NODE_SHARE) / options.memoryMiB),
  );
  const capacity = perNode * options.maxNodes;
  if (options.maxReplicas <= capacity) return undefined;
  return (
    `kubernetes.maxReplicas ${options.maxReplicas} pods (${options.cpuMillicores}m CPU, ${options.memoryMiB} MiB each) do not fit on ` +
    `${options.maxNodesField} ${options.maxNodes} x ${options.nodeName} (about ${perNode} such pods per node, counting ` +
    `${USABLE_NODE_SHARE * 100}% of its ${node.cpuMillicores / 1000} vCPU / ${node.memoryMiB / 1024} GiB): at its maximum the HPA would ` +
    `leave ${options.maxReplicas - capacity} pending. Raise ${options.maxNodesField} or lower kubernetes.maxReplicas.`
  );
}
