import { Release } from "@cdktf/provider-helm/lib/release";
import { AssetType, Construct, type ITerraformDependable, TerraformAsset } from "../cdk";
import { templatePath } from "../template";
import type { NodeWorkload } from "./node-workload";

export interface ServiceMonitorProps {
  /** The workload whose Service's `metrics` port is scraped. */
  readonly workload: NodeWorkload;
  /**
   * How often Prometheus scrapes, in seconds.
   * @default 30
   */
  readonly intervalSeconds?: number;
  /**
   * Labels on the ServiceMonitor, for a Prometheus that selects monitors by label (kube-prometheus-stack's
   * `release: <name>`).
   * @default {}
   */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * What must exist first.
   * @default - the workload's Service
   */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * A Prometheus Operator ServiceMonitor for a NodeWorkload, from NodeScale's own small chart: Helm applies it at
 * apply time, so planning needs no cluster access; a cluster without the CRD fails the install, naming it.
 */
export class ServiceMonitor extends Construct {
  /** The Helm release holding the ServiceMonitor. */
  readonly release: Release;

  constructor(scope: Construct, id: string, props: ServiceMonitorProps) {
    super(scope, id);
    const intervalSeconds = props.intervalSeconds ?? 30;
    const labels = props.labels ?? {};
    const workload = props.workload;
    const chart = new TerraformAsset(this, "Chart", { path: templatePath("charts/nodescale-service-monitor"), type: AssetType.DIRECTORY });
    this.release = new Release(this, "Release", {
      // A plain name (the service's), so the release's address does not wait on the Service.
      name: `${workload.selector["app.kubernetes.io/name"]}-metrics`,
      namespace: workload.service.metadata.namespace,
      chart: chart.path,
      atomic: true,
      values: [
        JSON.stringify({
          name: workload.service.metadata.name,
          namespace: workload.service.metadata.namespace,
          selector: workload.selector,
          interval: `${intervalSeconds}s`,
          labels,
        }),
      ],
      dependsOn: props.dependsOn ?? [workload.service],
    });
  }
}
