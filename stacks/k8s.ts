import { DockerProvider } from "@cdktf/provider-docker/lib/provider";
import { HelmProvider } from "@cdktf/provider-helm/lib/provider";
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider";
import { type Construct, DataResource, type ITerraformDependable } from "../constructs/cdk";
import { AppImage } from "../constructs/k8s/app-image";
import type { NodeWorkload } from "../constructs/k8s/node-workload";
import { type PlanRefusal, refuseAtPlan } from "../constructs/refuse-at-plan";
import { configureBackend } from "./backend";
import type { LoadedConfig } from "./config";
import { addKubernetesService, releaseTag } from "./kubernetes-service";
import { NodeScaleStack } from "./nodescale-stack";

export interface K8sStackProps {
  readonly loaded: LoadedConfig;
  /** The app's folder: the image is built from its sources when the config names no `image`. */
  readonly appDir: string;
  /** Content hash of the app release, used as the image's fixed tag. */
  readonly releaseId: string;
}

/**
 * `cdktf deploy k8s`: the workload, and nothing else, onto a cluster you already run (the kubeconfig context in
 * `kubernetes.cluster.context`), behind the ingress controller it already has; then the same health check.
 */
export class K8sStack extends NodeScaleStack {
  readonly workload: NodeWorkload;
  /** The image build and push, when the config names a repository instead of an image. */
  readonly image?: AppImage;

  constructor(scope: Construct, id: string, props: K8sStackProps) {
    super(scope, id);
    const { config, spec } = props.loaded;
    const c = config.kubernetes.cluster;
    configureBackend(this, config.state, id);
    new KubernetesProvider(this, "Kubernetes", { configPath: c.kubeconfig, configContext: c.context });
    // Helm only for the optional ServiceMonitor chart.
    if (config.kubernetes.serviceMonitor !== false) {
      new HelmProvider(this, "Helm", { kubernetes: { configPath: c.kubeconfig, configContext: c.context } });
    }

    // Problems of this target only stop its plan; the other stacks of the same config still deploy.
    const refusals: PlanRefusal[] = [];
    if (c.context === undefined) {
      refusals.push(
        refuseAtPlan(
          this,
          "NoContext",
          `kubernetes.cluster.context is not set in ${props.loaded.source}: name the kubeconfig context of your cluster (kubectl config get-contexts). Nothing was changed.`,
        ),
      );
    }
    let image = config.image;
    const waitFor: ITerraformDependable[] = [];
    if (image === undefined && c.repository !== undefined) {
      // Your registry, with the credentials `docker login` left on the deploying machine.
      new DockerProvider(this, "Docker", { registryAuth: [{ address: c.repository.split("/")[0] }] });
      this.image = new AppImage(this, "Image", { spec, appDir: props.appDir, repository: c.repository, tag: releaseTag(props.releaseId) });
      image = this.image.digestRef;
      waitFor.push(this.image.pushed);
    }
    if (image === undefined) {
      refusals.push(
        refuseAtPlan(
          this,
          "NoImage",
          `the k8s stack needs an image your cluster can pull: set "image" (pushed by your pipeline) or kubernetes.cluster.repository (NodeScale builds and pushes there) in ${props.loaded.source}. Nothing was changed.`,
        ),
      );
      // The tag the image would have; the plan stops above before anything uses it.
      image = `${spec.name}:${releaseTag(props.releaseId)}`;
    }
    if (refusals.length > 0) {
      waitFor.push(new DataResource(this, "Refused", { lifecycle: { precondition: refusals } }));
    }

    this.workload = addKubernetesService(this, {
      awsSecrets: false,
      loaded: props.loaded,
      image,
      loadBalancerAddress: "either",
      ingress: { className: c.ingressClassName, namespace: c.ingressNamespace },
      clusterName: c.context ?? "(kubernetes.cluster.context not set)",
      kubeconfigCommand: `kubectl config use-context ${c.context ?? "<context>"}`,
      dependsOn: waitFor,
    });
  }
}
