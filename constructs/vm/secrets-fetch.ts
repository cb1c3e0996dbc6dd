import type { Construct } from "../cdk";
import { type PlanRefusal, refuseAtPlan } from "../refuse-at-plan";
import { describeSecretRef, type SecretRef } from "../service/secrets";

/** Where a VM keeps its secrets' values: root's, 0600, read by the machine agent (root) only. */
export const VM_SECRETS_FILE = "/etc/nodescale/secrets.json";

const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * A machine with a role reads ssm: and secretsmanager: references itself; an env: reference would have to travel
 * in the user data, in clear. Such a spec stops this stack's plan, naming the references (the other stacks go on).
 */
export function roleReadableOnly(scope: Construct, owner: string, secrets: Readonly<Record<string, SecretRef>>): PlanRefusal[] {
  const env = Object.entries(secrets).filter(([, ref]) => ref.kind === "env");
  if (env.length === 0) return [];
  return [
    refuseAtPlan(
      scope,
      "SecretsNotFromRole",
      `${owner} reads secrets through its role (ssm: or secretsmanager:), never from user data: ${env.map(([n, r]) => `service.secrets.${n} is ${describeSecretRef(r)}`).join(", ")}`,
    ),
  ];
}

/**
 * Provision steps that read the service's secrets through the EC2 machine's role (IMDSv2 gives the region) and
 * write them to VM_SECRETS_FILE: each value travels only in a variable of this script and of one `node` process that
 * JSON-encodes them (never in an argument, the user data, a log or the plan). Runs at boot and at every rollout.
 */
export function ec2SecretsFetch(secrets: Readonly<Record<string, SecretRef>>): string {
  const entries = Object.entries(secrets).filter(([, ref]) => ref.kind !== "env");
  if (entries.length === 0) return "";
  const reads = entries.map(([name, ref]) => {
    const read =
      ref.kind === "ssm"
        ? `aws ssm get-parameter --region "\${region}" --with-decryption --name ${shellQuote(ref.name)} --query Parameter.Value --output text`
        : `aws secretsmanager get-secret-value --region ${shellQuote((ref as { arn: string }).arn.split(":")[3])} --secret-id ${shellQuote((ref as { arn: string }).arn)} --query SecretString --output text`;
    return `NODESCALE_SECRET_${name}="$(${read})"\nexport NODESCALE_SECRET_${name}`;
  });
  const names = entries.map(([name]) => name).join(" ");
  return [
    'log "secrets"',
    "command -v aws >/dev/null 2>&1 || snap install aws-cli --classic",
    `region="$(curl -fsS -H "X-aws-ec2-metadata-token: $(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')" http://169.254.169.254/latest/meta-data/placement/region)"`,
    ...reads,
    "install -d -o root -g root -m 0700 /etc/nodescale",
    `( umask 077; /usr/local/bin/node -e 'const o = {}; for (const n of process.argv.slice(1)) o[n] = process.env["NODESCALE_SECRET_" + n]; process.stdout.write(JSON.stringify(o));' ${names} > ${VM_SECRETS_FILE}.tmp )`,
    `mv -f ${VM_SECRETS_FILE}.tmp ${VM_SECRETS_FILE}`,
    `unset ${entries.map(([name]) => `NODESCALE_SECRET_${name}`).join(" ")}`,
    "",
  ].join("\n");
}
