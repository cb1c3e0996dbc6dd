// NodeScale as a library: the service spec, the VM and Kubernetes constructs, release packing, the renderers and
// the health check a cdktf project composes into its own stacks. The golden-path app (main.ts, stacks/) is one
// consumer of exactly this surface. (Sorted by module path, as the linter keeps it.)

export {
  HEALTH_CLI,
  POST_DEPLOY_HEALTH_CHECK_DEFAULTS,
  PostDeployHealthCheck,
  type PostDeployHealthCheckProps,
} from "./constructs/health/post-deploy-health-check";
export { AppImage, type AppImageProps } from "./constructs/k8s/app-image";
export {
  AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION,
  AwsLoadBalancerController,
  type AwsLoadBalancerControllerProps,
  albIngressAnnotations,
} from "./constructs/k8s/aws-load-balancer-controller";
export { ACME_CLUSTER_ISSUER, CERT_MANAGER_CHART_VERSION, CertManager, type CertManagerProps } from "./constructs/k8s/cert-manager";
export { CLUSTER_ADDONS_DEFAULTS, ClusterAddons, type ClusterAddonsProps } from "./constructs/k8s/cluster-addons";
export {
  CLUSTER_AUTOSCALER_APP_VERSION,
  CLUSTER_AUTOSCALER_CHART_VERSION,
  ClusterAutoscaler,
  type ClusterAutoscalerProps,
} from "./constructs/k8s/cluster-autoscaler";
export { IMAGE_USER, renderDockerfile } from "./constructs/k8s/dockerfile";
export { DOKS_CLUSTER_DEFAULTS, DoksNodeCluster, type DoksNodeClusterProps } from "./constructs/k8s/doks-cluster";
export { EKS_CLUSTER_DEFAULTS, EksNodeCluster, type EksNodeClusterProps } from "./constructs/k8s/eks-cluster";
export { type EgressRule, NODE_WORKLOAD_DEFAULTS, NodeWorkload, type NodeWorkloadProps } from "./constructs/k8s/node-workload";
export { TRAEFIK_CHART_VERSION, TraefikIngress, type TraefikIngressProps } from "./constructs/k8s/traefik";
export { type PlanRefusal, refuseAtPlan } from "./constructs/refuse-at-plan";
export { type AppBundle, bundleFile } from "./constructs/release/bundle";
export { PackError, type PackReleaseOptions, packRelease, stageSources } from "./constructs/release/release-pack";
export { ConfigError, InvalidPropError } from "./constructs/service/errors";
export { NODE_RELEASES, type NodeMajor, type NodeRelease, SUPPORTED_NODE_MAJORS } from "./constructs/service/node-releases";
export { ENTRY_FILE, type ServiceConfig, type ServiceInput, serviceSchema } from "./constructs/service/schema";
export { type AppEnvOptions, DEFAULT_START, NodeServiceSpec, UPSTREAM_IDLE_TIMEOUT_SECONDS } from "./constructs/service/spec";
export { TemplateError } from "./constructs/template";
export { DROPLET_DEFAULTS, DROPLET_NODE_GROUP_DEFAULTS } from "./constructs/vm/droplet-common";
export { DropletNodeHost, type DropletNodeHostProps } from "./constructs/vm/droplet-host";
export { DropletNodeGroup, type DropletNodeGroupProps } from "./constructs/vm/droplet-node-group";
export { type AlarmTarget, SERVICE_ALARMS_DEFAULTS, ServiceAlarms, type ServiceAlarmsProps } from "./constructs/vm/ec2-alarms";
export { EC2_MACHINE_DEFAULTS, EC2_NODE_GROUP_DEFAULTS } from "./constructs/vm/ec2-common";
export { Ec2NodeHost, type Ec2NodeHostProps } from "./constructs/vm/ec2-host";
export { MACHINE_LOGS_DEFAULTS, MachineLogs, type MachineLogsProps } from "./constructs/vm/ec2-logs";
export { Ec2NodeGroup, type Ec2NodeGroupProps } from "./constructs/vm/ec2-node-group";
export { LOCAL_TARGET_DEFAULTS, LocalTarget, type LocalTargetProps } from "./constructs/vm/local-target";
export { DEFAULT_VM_MODE, type ProcessPlan, processPlan, type VmMode } from "./constructs/vm/plan";
export { ReleaseBucket, type ReleaseBucketProps } from "./constructs/vm/release-bucket";
export { pm2Apps, renderLoadBalancerSite, renderNginxMain, renderNginxSite } from "./constructs/vm/render";
export { SshRelease, type SshReleaseKey, type SshReleaseProps } from "./constructs/vm/ssh-release";
export { checkHealth, formatReport, type HealthOptions, type HealthReport } from "./health/check";
