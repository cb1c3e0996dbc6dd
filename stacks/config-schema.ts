import { z } from "zod";
import { INGRESS_CLASS, INGRESS_NAMESPACE } from "../constructs/k8s/cluster-addons";
import { DOKS_CLUSTER_DEFAULTS } from "../constructs/k8s/doks-cluster";
import { EKS_CLUSTER_DEFAULTS, EKS_ZONES } from "../constructs/k8s/eks-cluster";
import { NODE_WORKLOAD_DEFAULTS } from "../constructs/k8s/node-workload";
import { parseCidr, whatTheListOpens } from "../constructs/service/cidr";
import { DNS_LABEL, isPinnedImage, PINNED_IMAGE_RULE, SSH_PUBLIC_KEY, SSH_PUBLIC_KEY_RULE, wholeNumber } from "../constructs/service/rules";
import { serviceSchema } from "../constructs/service/schema";
import { LETS_ENCRYPT_DIRECTORY } from "../constructs/vm/acme";
import { DROPLET_DEFAULTS } from "../constructs/vm/droplet-common";
import { EC2_MACHINE_DEFAULTS, EC2_NODE_GROUP_DEFAULTS } from "../constructs/vm/ec2-common";
import { MACHINE_LOGS_DEFAULTS, RETENTION_DAYS } from "../constructs/vm/ec2-logs";
import { LOCAL_TARGET_DEFAULTS } from "../constructs/vm/local-target";
import { DEFAULT_VM_MODE } from "../constructs/vm/plan";
import { NODE_DIST } from "../constructs/vm/provision";

const SLUG = /^[a-z0-9][a-z0-9.-]*$/;

const slug = (fallback: string, what: string) =>
  z
    .string({ error: `must be ${what}` })
    .regex(SLUG, { error: `must be ${what}` })
    .default(fallback);

const cidr = z
  .string({ error: 'must be a CIDR such as "203.0.113.7/32"' })
  .refine((v) => parseCidr(v) !== undefined, { error: 'must be a CIDR such as "203.0.113.7/32"' });

/** A list of CIDRs that, read as addresses, must leave some of the internet out. */
const notEveryone = (what: string) => (list: readonly string[], ctx: z.RefinementCtx) => {
  const opens = whatTheListOpens(list);
  if (opens !== undefined) ctx.addIssue({ code: "custom", input: list, message: `covers ${opens}, which ${what}` });
};

/** SSH from the whole internet is refused outright, however the list spells it: use SSM / the DO console, or name your own address. */
const sshCidrs = z
  .array(cidr)
  .superRefine(notEveryone("opens SSH to the whole internet; list your own addresses (for example your office /32), or none and use SSM"))
  .default([]);

const apiCidrs = z
  .array(cidr)
  .superRefine(notEveryone("opens the Kubernetes API to the whole internet; list the addresses that deploy"))
  .default([]);

const imageRef = z
  .string({ error: 'must be an image reference pinned by tag or digest, such as "ghcr.io/acme/api:1.4.2"' })
  .refine(isPinnedImage, { error: `must be ${PINNED_IMAGE_RULE}` });

const vpcIdRef = z.string().regex(/^vpc-[0-9a-f]{8,17}$/, { error: 'must be a VPC id such as "vpc-0abc1234"' });
const subnetIdRef = z.string().regex(/^subnet-[0-9a-f]{8,17}$/, { error: 'must be a subnet id such as "subnet-0abc1234"' });

const retentionError = `must be one of CloudWatch's retention periods: ${RETENTION_DAYS.join(", ")}`;

const route53ZoneId = z
  .string()
  .regex(/^Z[A-Z0-9]{4,32}$/, { error: 'must be a Route 53 hosted zone id such as "Z0123456789ABCDEFGHIJ"' })
  .optional();

const acmeServer = z
  .url({ protocol: /^https$/, error: "must be an https URL of an ACME directory, such as Let's Encrypt's" })
  .default(LETS_ENCRYPT_DIRECTORY);

const awsVm = z.strictObject({
  region: slug("us-east-1", "an AWS region such as us-east-1"),
  instanceType: slug(EC2_MACHINE_DEFAULTS.instanceType, "an EC2 instance type such as t3.small"),
  sshCidrs,
  vpcId: vpcIdRef.optional(),
  subnetId: subnetIdRef.optional(),
  rootVolumeGiB: wholeNumber(8, 1024, "root volume size").default(EC2_MACHINE_DEFAULTS.rootVolumeGiB),
  route53ZoneId,
  logRetentionDays: z
    .number({ error: retentionError })
    .refine((d) => RETENTION_DAYS.includes(d), { error: retentionError })
    .default(MACHINE_LOGS_DEFAULTS.retentionDays),
});

const doVm = z.strictObject({
  region: slug(DROPLET_DEFAULTS.region, "a DigitalOcean region slug such as nyc3"),
  size: slug(DROPLET_DEFAULTS.size, "a Droplet size slug such as s-1vcpu-2gb"),
  sshKeyFingerprints: z
    .array(z.string().regex(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/, { error: "must be an MD5 SSH key fingerprint such as aa:bb:...:ff" }))
    .default([]),
  sshCidrs,
  deployKey: z
    .strictObject({
      publicKey: z.string({ error: SSH_PUBLIC_KEY_RULE }).trim().regex(SSH_PUBLIC_KEY, { error: SSH_PUBLIC_KEY_RULE }),
      privateKeyFile: z.string({ error: "must be the path of the private key on the machine that deploys" }).min(1, {
        error: "must be the path of the private key on the machine that deploys",
      }),
    })
    .optional(),
});

const eks = z.strictObject({
  region: slug("us-east-1", "an AWS region such as us-east-1"),
  version: z
    .string()
    .regex(/^1\.\d{2}$/, { error: 'must be a Kubernetes minor version such as "1.35"' })
    .default(EKS_CLUSTER_DEFAULTS.version),
  nodeInstanceType: slug(EKS_CLUSTER_DEFAULTS.nodeInstanceType, "an EC2 instance type such as t3.medium"),
  minNodes: wholeNumber(1, 100, "node group lower bound").default(EKS_CLUSTER_DEFAULTS.minNodes),
  desiredNodes: wholeNumber(1, 100, "node group starting size").default(EKS_CLUSTER_DEFAULTS.desiredNodes),
  maxNodes: wholeNumber(1, 100, "node group upper bound").default(EKS_CLUSTER_DEFAULTS.maxNodes),
  zones: wholeNumber(EKS_ZONES.min, EKS_ZONES.max, "availability zones; the region must have that many").default(
    EKS_CLUSTER_DEFAULTS.zones,
  ),
  vpcCidr: cidr.default(EKS_CLUSTER_DEFAULTS.vpcCidr),
  natGateways: z
    .enum(["single", "perZone"], { error: '"single" (cheaper) or "perZone" (survives a zone outage)' })
    .default(EKS_CLUSTER_DEFAULTS.natGateways),
  publicAccessCidrs: apiCidrs,
  vpcId: vpcIdRef.optional(),
  privateSubnetIds: z.array(subnetIdRef).min(2, { error: "must list at least two subnets, in different zones" }).optional(),
  publicSubnetIds: z.array(subnetIdRef).min(2, { error: "must list at least two subnets, in different zones" }).optional(),
  route53ZoneId,
});

const doks = z.strictObject({
  region: slug("nyc3", "a DigitalOcean region slug such as nyc3"),
  versionPrefix: z
    .string()
    .regex(/^1\.\d{2}\.$/, { error: 'must be a Kubernetes minor version prefix such as "1.35."' })
    .default(DOKS_CLUSTER_DEFAULTS.versionPrefix),
  nodeSize: slug(DOKS_CLUSTER_DEFAULTS.nodeSize, "a Droplet size slug such as s-2vcpu-4gb"),
  minNodes: wholeNumber(1, 100, "node pool lower bound").default(DOKS_CLUSTER_DEFAULTS.minNodes),
  maxNodes: wholeNumber(1, 100, "node pool upper bound").default(DOKS_CLUSTER_DEFAULTS.maxNodes),
  haControlPlane: z.boolean({ error: "must be true or false" }).default(DOKS_CLUSTER_DEFAULTS.haControlPlane),
  acmeServer,
  acmeEmail: z.email({ error: "must be an e-mail address" }).optional(),
  vpcCidr: cidr.default(DOKS_CLUSTER_DEFAULTS.vpcCidr),
  maintenanceDay: z
    .enum(["any", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"], { error: "must be a weekday or any" })
    .default(DOKS_CLUSTER_DEFAULTS.maintenanceDay),
  maintenanceStartTime: z
    .string()
    .regex(/^([01]\d|2[0-3]):00$/, { error: 'must be a whole hour in UTC such as "04:00"' })
    .default(DOKS_CLUSTER_DEFAULTS.maintenanceStartTime),
});

const state = z.discriminatedUnion(
  "backend",
  [
    z.strictObject({ backend: z.literal("local") }),
    z.strictObject({
      backend: z.literal("s3"),
      bucket: z.string().min(3),
      keyPrefix: z.string().default("nodescale"),
      region: slug("us-east-1", "an AWS region such as us-east-1"),
      /** For DigitalOcean Spaces (S3-compatible), e.g. https://nyc3.digitaloceanspaces.com. */
      endpoint: z.url({ protocol: /^https$/, error: "must be an https URL such as https://nyc3.digitaloceanspaces.com" }).optional(),
      /** State holds secrets: encrypt it with your KMS key rather than S3's default key. */
      kmsKeyId: z
        .string()
        .regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key\/[0-9a-f-]{36}|alias\/[A-Za-z0-9/_-]+)$/, {
          error: 'must be the ARN of a KMS key or alias, such as "arn:aws:kms:eu-west-1:123456789012:key/..."',
        })
        .optional(),
    }),
  ],
  { error: 'backend must be "local" or "s3" (S3 or DigitalOcean Spaces)' },
);

/** Everything nodescale.config.json may hold. Secrets never go here. */
export const configSchema = z
  .strictObject({
    $schema: z.string().optional(),
    service: serviceSchema.prefault({}),
    local: z
      .strictObject({
        port: wholeNumber(1024, 65535, "the loopback port the service is reached on").default(LOCAL_TARGET_DEFAULTS.port),
        machines: wholeNumber(1, 16, "simulated machines; 2 or more run behind a local load balancer").default(
          LOCAL_TARGET_DEFAULTS.machines,
        ),
        https: z.boolean({ error: "must be true or false" }).default(LOCAL_TARGET_DEFAULTS.https),
        httpsPort: wholeNumber(1024, 65535, "the loopback port HTTPS is served on").default(LOCAL_TARGET_DEFAULTS.httpsPort),
        clientLimits: z.boolean({ error: "must be true or false" }).default(LOCAL_TARGET_DEFAULTS.clientLimits),
      })
      .prefault({}),
    vm: z
      .strictObject({
        mode: z
          .enum(["cluster", "fork"], { error: '"cluster" (PM2 cluster on one port) or "fork" (one process per port)' })
          .default(DEFAULT_VM_MODE),
        machines: wholeNumber(1, 100, "machines; 2 or more run behind a load balancer").default(1),
        minMachines: wholeNumber(1, 100, "fewest machines the CPU autoscaling keeps; default: machines").optional(),
        maxMachines: wholeNumber(1, 100, "most machines the CPU autoscaling may run; default: machines").optional(),
        clientLimits: z.boolean({ error: "must be true or false" }).default(EC2_MACHINE_DEFAULTS.clientLimits),
        nodeMirror: z
          .string({ error: "must be an http(s) URL with nodejs.org/dist's layout, such as https://mirror.example.com/nodejs/dist" })
          .regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~%/-]*)?$/, {
            error: "must be an http(s) URL with nodejs.org/dist's layout, such as https://mirror.example.com/nodejs/dist",
          })
          .default(NODE_DIST),
        keepReleases: wholeNumber(1, 20, "releases each machine keeps for a quick roll back, the current one included").default(3),
        acmeServer,
        acmeEmail: z.email({ error: "must be an e-mail address" }).optional(),
        alertEmail: z.email({ error: "must be an e-mail address" }).optional(),
        targetCpuPercent: wholeNumber(10, 90, "average CPU utilisation the machine autoscaling aims at").default(
          EC2_NODE_GROUP_DEFAULTS.targetCpuPercent,
        ),
        aws: awsVm.prefault({}),
        digitalocean: doVm.prefault({}),
      })
      .prefault({}),
    kubernetes: z
      .strictObject({
        minReplicas: wholeNumber(1, 1000, "fewest pods; 2 or more keeps the service up through a node drain").default(
          NODE_WORKLOAD_DEFAULTS.minReplicas,
        ),
        maxReplicas: wholeNumber(1, 1000, "most pods the autoscaler may run").default(NODE_WORKLOAD_DEFAULTS.maxReplicas),
        targetCpuPercent: wholeNumber(1, 100, "average CPU utilisation the autoscaler aims at").default(
          NODE_WORKLOAD_DEFAULTS.targetCpuPercent,
        ),
        preStopSeconds: wholeNumber(0, 60, "delay before shutdown so load balancers stop routing to the pod").default(
          NODE_WORKLOAD_DEFAULTS.preStopSeconds,
        ),
        host: z
          .string()
          .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$/, { error: "must be a DNS name such as api.example.com" })
          .optional(),
        tlsSecretName: z.string().optional(),
        restrictEgress: z.boolean({ error: "must be true or false" }).default(NODE_WORKLOAD_DEFAULTS.restrictEgress),
        serviceMonitor: z
          .union([z.literal(false), z.strictObject({ labels: z.record(z.string(), z.string()).default({}) })], {
            error:
              'must be false or { "labels": { ... } } (labels your Prometheus selects monitors by, e.g. { "release": "kube-prometheus-stack" })',
          })
          .default(false),
        egress: z
          .array(
            z.strictObject({
              cidr,
              ports: z.array(wholeNumber(1, 65535, "a TCP port the pods connect to")).min(1, { error: "must list at least one port" }),
            }),
          )
          .default([]),
        cluster: z
          .strictObject({
            context: z.string().min(1, { error: "must be the name of a kubeconfig context" }).optional(),
            kubeconfig: z.string().min(1).default("~/.kube/config"),
            repository: z
              .string()
              .regex(/^[a-z0-9][a-z0-9._\-/:]*[a-z0-9]$/, {
                error: "must be an image repository without a tag, such as ghcr.io/acme/orders",
              })
              .refine((v) => !/:[A-Za-z0-9_.-]+$/.test(v.split("/").pop() ?? ""), {
                error: "must be an image repository without a tag, such as ghcr.io/acme/orders",
              })
              .optional(),
            ingressClassName: z.string().regex(DNS_LABEL, { error: "must be an IngressClass name (a DNS label)" }).default(INGRESS_CLASS),
            ingressNamespace: z.string().regex(DNS_LABEL, { error: "must be a namespace name (a DNS label)" }).default(INGRESS_NAMESPACE),
          })
          .prefault({}),
        eks: eks.prefault({}),
        doks: doks.prefault({}),
      })
      .prefault({}),
    image: imageRef.optional(),
    state: state.optional(),
  })
  .superRefine((config, ctx) => {
    const issue = (path: (string | number)[], input: unknown, message: string) => ctx.addIssue({ code: "custom", path, input, message });
    const k = config.kubernetes;
    if (k.minReplicas > k.maxReplicas) {
      issue(["kubernetes", "minReplicas"], k.minReplicas, `must not exceed kubernetes.maxReplicas (${k.maxReplicas})`);
    }
    const e = k.eks;
    if (e.minNodes > e.desiredNodes || e.desiredNodes > e.maxNodes) {
      issue(["kubernetes", "eks", "desiredNodes"], e.desiredNodes, `must lie within minNodes (${e.minNodes}) and maxNodes (${e.maxNodes})`);
    }
    if (k.doks.minNodes > k.doks.maxNodes) {
      issue(["kubernetes", "doks", "minNodes"], k.doks.minNodes, `must not exceed kubernetes.doks.maxNodes (${k.doks.maxNodes})`);
    }
    if (k.tlsSecretName && !k.host) {
      issue(["kubernetes", "tlsSecretName"], k.tlsSecretName, "needs kubernetes.host: a certificate is issued for a name");
    }
    const eksVpc = [e.vpcId, e.privateSubnetIds, e.publicSubnetIds];
    if (eksVpc.some((v) => v !== undefined) && eksVpc.some((v) => v === undefined)) {
      issue(
        ["kubernetes", "eks", "vpcId"],
        e.vpcId ?? null,
        "kubernetes.eks.vpcId, privateSubnetIds and publicSubnetIds go together: an existing VPC and its subnets",
      );
    }
    const aws = config.vm.aws;
    if ((aws.vpcId === undefined) !== (aws.subnetId === undefined)) {
      issue(
        ["vm", "aws", aws.vpcId ? "subnetId" : "vpcId"],
        aws.vpcId ?? aws.subnetId,
        "vm.aws.vpcId and vm.aws.subnetId go together: an existing VPC and its public subnet",
      );
    }
    const vm = config.vm;
    const minMachines = vm.minMachines ?? vm.machines;
    const maxMachines = vm.maxMachines ?? vm.machines;
    if (minMachines > vm.machines || vm.machines > maxMachines) {
      issue(["vm", "machines"], vm.machines, `must lie within vm.minMachines (${minMachines}) and vm.maxMachines (${maxMachines})`);
    }
    if (vm.machines === 1 && maxMachines > 1) {
      issue(
        ["vm", "maxMachines"],
        maxMachines,
        "needs vm.machines >= 2: autoscaling runs behind a load balancer, which one machine does not have",
      );
    }
    if (vm.machines > 1 && aws.vpcId !== undefined) {
      issue(
        ["vm", "aws", "vpcId"],
        aws.vpcId,
        "is for one machine; with vm.machines >= 2 NodeScale creates the VPC, its public subnets over two zones and the load balancer",
      );
    }
    const droplets = config.vm.digitalocean;
    if (droplets.deployKey !== undefined && droplets.sshCidrs.length === 0) {
      issue(
        ["vm", "digitalocean", "sshCidrs"],
        droplets.sshCidrs,
        "must name the address you deploy from when vm.digitalocean.deployKey is set: releases are pushed to the Droplets over SSH",
      );
    }
    const s = config.service;
    if (config.vm.mode === "fork") {
      if (s.workers === "auto") {
        issue(["service", "workers"], s.workers, 'must be a number with vm.mode "fork": one port per process needs a fixed count');
      } else if (s.port + s.workers - 1 > 65535) {
        issue(["service", "port"], s.port, `leaves no room for ${s.workers} fork-mode ports (${s.port}-${s.port + s.workers - 1})`);
      }
    }
    const used = config.vm.mode === "fork" && typeof s.workers === "number" ? [s.port, s.port + s.workers - 1] : [s.port, s.port];
    if (config.local.port >= used[0] && config.local.port <= used[1]) {
      issue(["local", "port"], config.local.port, `collides with the app's port(s) ${used[0]}-${used[1]}; pick another`);
    }
    if (config.local.https) {
      const https = config.local.httpsPort;
      if (https === config.local.port) issue(["local", "httpsPort"], https, "is local.port too; pick another");
      else if (https >= used[0] && https <= used[1]) {
        issue(["local", "httpsPort"], https, `collides with the app's port(s) ${used[0]}-${used[1]}; pick another`);
      }
    }
  });

export type NodeScaleConfig = z.infer<typeof configSchema>;
