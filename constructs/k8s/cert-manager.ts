import { Release } from "@cdktf/provider-helm/lib/release";
import { AssetType, Construct, type ITerraformDependable, TerraformAsset } from "../cdk";
import { templatePath } from "../template";

/** cert-manager v1.21.1 from https://charts.jetstack.io (cert-manager/cert-manager tag v1.21.1, 2026-08). */
export const CERT_MANAGER_CHART_VERSION = "v1.21.1";
export const CERT_MANAGER_NAMESPACE = "cert-manager";
/** The ClusterIssuer NodeScale's chart creates. */
export const ACME_CLUSTER_ISSUER = "nodescale-acme";

export interface CertManagerProps {
  /** IngressClass of the controller that answers the HTTP-01 challenges. */
  readonly ingressClassName: string;
  /**
   * ACME directory of the ClusterIssuer.
   * @default "https://acme-v02.api.letsencrypt.org/directory"
   */
  readonly acmeServer?: string;
  /**
   * E-mail on the ACME account.
   * @default - none
   */
  readonly acmeEmail?: string;
  /**
   * What must exist first (the nodes, the ingress controller).
   * @default []
   */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * cert-manager and one ACME ClusterIssuer (`nodescale-acme`, HTTP-01 through the ingress controller): an Ingress
 * annotated `cert-manager.io/cluster-issuer: nodescale-acme` with a TLS section gets a certificate that cert-manager
 * renews before it expires. The issuer comes from a small chart of NodeScale's (templates/charts/), installed once
 * cert-manager and its CRDs are up, so nothing needs the cluster's API at plan.
 */
export class CertManager extends Construct {
  readonly release: Release;
  /** The ClusterIssuer's release: what an Ingress with TLS waits for. */
  readonly issuer: Release;

  constructor(scope: Construct, id: string, props: CertManagerProps) {
    super(scope, id);
    const acmeServer = props.acmeServer ?? "https://acme-v02.api.letsencrypt.org/directory";
    this.release = new Release(this, "Release", {
      name: "cert-manager",
      namespace: CERT_MANAGER_NAMESPACE,
      createNamespace: true,
      repository: "https://charts.jetstack.io",
      chart: "cert-manager",
      version: CERT_MANAGER_CHART_VERSION,
      atomic: true,
      wait: true,
      timeout: 900,
      values: [
        JSON.stringify({
          crds: { enabled: true, keep: true },
          replicaCount: 2,
          podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
          webhook: { replicaCount: 2, podDisruptionBudget: { enabled: true, maxUnavailable: 1 } },
        }),
      ],
      dependsOn: props.dependsOn ?? [],
    });
    const chart = new TerraformAsset(this, "IssuerChart", {
      path: templatePath("charts/nodescale-acme-issuer"),
      type: AssetType.DIRECTORY,
    });
    this.issuer = new Release(this, "Issuer", {
      name: "nodescale-acme-issuer",
      namespace: CERT_MANAGER_NAMESPACE,
      chart: chart.path,
      atomic: true,
      wait: true,
      values: [
        JSON.stringify({
          name: ACME_CLUSTER_ISSUER,
          server: acmeServer,
          email: props.acmeEmail ?? "",
          ingressClassName: props.ingressClassName,
        }),
      ],
      dependsOn: [this.release],
    });
  }
}
