import { dropletShape, ec2Shape, podsDoNotFit } from "../../constructs/k8s/capacity";

describe("whether the HPA's maximum fits on the nodes", () => {
  it("reads a node's shape from a Droplet size slug and common EC2 instance types", () => {
    expect(dropletShape("s-2vcpu-4gb")).toEqual({ cpuMillicores: 2000, memoryMiB: 4096 });
    expect(dropletShape("g-4vcpu-16gb")).toEqual({ cpuMillicores: 4000, memoryMiB: 16384 });
    expect(dropletShape("c-2")).toBeUndefined();
    expect(ec2Shape("t3.medium")).toEqual({ cpuMillicores: 2000, memoryMiB: 4096 });
    expect(ec2Shape("t3.large")).toEqual({ cpuMillicores: 2000, memoryMiB: 8192 });
    expect(ec2Shape("m6i.xlarge")).toEqual({ cpuMillicores: 4000, memoryMiB: 16384 });
    expect(ec2Shape("c7g.large")).toEqual({ cpuMillicores: 2000, memoryMiB: 4096 });
    expect(ec2Shape("m5.medium")).toBeUndefined();
    expect(ec2Shape("p4d.24xlarge")).toBeUndefined();
  });

  it("says how many pods would stay pending, and what to change, when they do not fit", () => {
    const options = {
      cpuMillicores: 500,
      memoryMiB: 512,
      node: { cpuMillicores: 2000, memoryMiB: 4096 },
      nodeName: "s-2vcpu-4gb",
      maxNodesField: "kubernetes.doks.maxNodes",
    };
    // 80% of 2 vCPU is 1600m: 3 pods of 500m per node.
    expect(podsDoNotFit({ ...options, maxReplicas: 6, maxNodes: 2 })).toBeUndefined();
    expect(podsDoNotFit({ ...options, maxReplicas: 10, maxNodes: 2 })).toBe(
      "kubernetes.maxReplicas 10 pods (500m CPU, 512 MiB each) do not fit on kubernetes.doks.maxNodes 2 x s-2vcpu-4gb (about 3 such pods per node, counting 80% of its 2 vCPU / 4 GiB): at its maximum the HPA would leave 4 pending. Raise kubernetes.doks.maxNodes or lower kubernetes.maxReplicas.",
    );
  });
});
