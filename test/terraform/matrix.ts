// The configurations a user would really write, each with the stacks it is meant for. The validate test and the
// Checkov test run over the same list.

import type { StackName } from "../helpers/terraform";

export interface MatrixEntry {
  /** What a user would call this set-up. */
  readonly name: string;
  /** nodescale.config.json. */
  readonly config: Record<string, unknown>;
  /** The stacks this configuration is deployed with. */
  readonly stacks: readonly StackName[];
  /** The deploying shell's environment (values of `env:` secrets). */
  readonly env?: Record<string, string>;
}

const ZONE = "Z0123456789ABCDEFGHIJ";
const SECRETS = {
  DATABASE_URL: "ssm:/hello-node/database-url",
  STRIPE_KEY: "secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:hello-node/stripe-AbCdEf",
  SESSION_SECRET: "env:HELLO_SESSION_SECRET",
};
const SECRET_ENV = { HELLO_SESSION_SECRET: "value-from-the-deploying-shell" };

export const MATRIX: readonly MatrixEntry[] = [
  { name: "the defaults: one machine, cluster mode", config: {}, stacks: ["local", "vm-pm2", "vm-pm2-do", "eks", "doks"] },
  {
    name: "one machine, fork mode, a domain, alert e-mails and secrets of each kind",
    config: {
      service: { workers: 3, domain: "api.example.com", secrets: SECRETS },
      vm: { mode: "fork", acmeEmail: "ops@example.com", alertEmail: "ops@example.com" },
    },
    env: SECRET_ENV,
    stacks: ["vm-pm2", "vm-pm2-do"],
  },
  {
    name: "a group of 3 behind a load balancer, a domain in Route 53, alerts, autoscaling from 2 to 5",
    config: {
      service: { domain: "api.example.com" },
      vm: { machines: 3, minMachines: 2, maxMachines: 5, alertEmail: "ops@example.com", aws: { route53ZoneId: ZONE } },
    },
    stacks: ["vm-pm2", "vm-pm2-do"],
  },
  {
    name: "a group of 3 in fork mode with secrets of each kind",
    config: { service: { workers: 2, secrets: SECRETS }, vm: { mode: "fork", machines: 3 } },
    env: SECRET_ENV,
    stacks: ["vm-pm2", "vm-pm2-do"],
  },
  {
    name: "one machine in an existing VPC",
    config: { vm: { aws: { vpcId: "vpc-0abc1234", subnetId: "subnet-0abc1234" } } },
    stacks: ["vm-pm2"],
  },
  {
    name: "remote state in S3, encrypted with a KMS key",
    config: {
      state: {
        backend: "s3",
        bucket: "acme-tf-state",
        region: "eu-west-1",
        kmsKeyId: "arn:aws:kms:eu-west-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
      },
    },
    stacks: ["vm-pm2", "eks"],
  },
  {
    name: "remote state in DigitalOcean Spaces",
    config: { state: { backend: "s3", bucket: "acme-tf-state", region: "us-east-1", endpoint: "https://nyc3.digitaloceanspaces.com" } },
    stacks: ["vm-pm2-do", "doks"],
  },
  {
    name: "EKS and DOKS with a domain and a ServiceMonitor",
    config: {
      kubernetes: {
        host: "api.example.com",
        serviceMonitor: { labels: { release: "kube-prometheus-stack" } },
        eks: { route53ZoneId: ZONE },
        doks: { acmeEmail: "ops@example.com" },
      },
    },
    stacks: ["eks", "doks"],
  },
  {
    name: "EKS in an existing VPC",
    config: {
      kubernetes: {
        eks: {
          vpcId: "vpc-0abc1234",
          privateSubnetIds: ["subnet-0aaa1111", "subnet-0bbb2222"],
          publicSubnetIds: ["subnet-0ccc3333", "subnet-0ddd4444"],
        },
      },
    },
    stacks: ["eks"],
  },
  {
    name: "your own cluster (a kubeconfig context) with a pinned image",
    config: { image: "ghcr.io/acme/hello-node:1.4.2", kubernetes: { cluster: { context: "kind-nodescale" } } },
    stacks: ["k8s"],
  },
  {
    name: "your own cluster, NodeScale building and pushing the image, with a domain and a ServiceMonitor",
    config: {
      kubernetes: {
        host: "api.example.com",
        tlsSecretName: "api-example-com-tls",
        serviceMonitor: { labels: { release: "kube-prometheus-stack" } },
        cluster: { context: "kind-nodescale", repository: "ghcr.io/acme/hello-node" },
      },
    },
    stacks: ["k8s"],
  },
];
