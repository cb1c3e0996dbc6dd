// Where a secret's value lives: the spec holds references only, never a value.

/** An SSM Parameter Store SecureString, read by the machine (its role) or the deploy (Kubernetes). */
export interface SsmSecret {
  readonly kind: "ssm";
  /** Parameter name, starting with "/". */
  readonly name: string;
}
/** An AWS Secrets Manager secret, by its full ARN. */
export interface SecretsManagerSecret {
  readonly kind: "secretsmanager";
  readonly arn: string;
}
/** A variable of the shell that deploys, read at deploy time. */
export interface EnvSecret {
  readonly kind: "env";
  readonly variable: string;
}
export type SecretRef = SsmSecret | SecretsManagerSecret | EnvSecret;

const SSM = /^ssm:(\/[A-Za-z0-9_.\-/]{1,1010})$/;
const SECRETS_MANAGER = /^secretsmanager:(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+)$/;
const ENV = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;

/** What a reference looks like, for error messages. */
export const SECRET_REF_RULE =
  'must be a reference, never a value: "ssm:/path/to/parameter", "secretsmanager:arn:aws:secretsmanager:<region>:<account>:secret:<name>" or "env:VARIABLE"';

/** The reference a string names, or undefined when it is not one. */
export function parseSecretRef(text: string): SecretRef | undefined {
  const ssm = SSM.exec(text);
  if (ssm) return { kind: "ssm", name: ssm[1] };
  const sm = SECRETS_MANAGER.exec(text);
  if (sm) return { kind: "secretsmanager", arn: sm[1] };
  const env = ENV.exec(text);
  if (env) return { kind: "env", variable: env[1] };
  return undefined;
}

/** The reference as the config writes it (for messages; holds no value). */
export function describeSecretRef(ref: SecretRef): string {
  return ref.kind === "ssm" ? `ssm:${ref.name}` : ref.kind === "secretsmanager" ? `secretsmanager:${ref.arn}` : `env:${ref.variable}`;
}

/**
 * The values of `env:` references from an environment (the deploying shell), or the names of the variables it lacks.
 * An empty variable counts as missing: an empty secret is almost always a mistake.
 */
export function readEnvSecrets(
  secrets: Readonly<Record<string, SecretRef>>,
  env: NodeJS.ProcessEnv,
): { values: Record<string, string>; missing: string[] } {
  const values: Record<string, string> = {};
  const missing: string[] = [];
  for (const [name, ref] of Object.entries(secrets)) {
    if (ref.kind !== "env") continue;
    const value = env[ref.variable];
    if (value === undefined || value === "") missing.push(`service.secrets.${name} (env:${ref.variable})`);
    else values[name] = value;
  }
  return { values, missing };
}

/** The problem when env: references are not set: the same words at plan (stacks) and at deploy (runners). */
export const missingEnvSecretsMessage = (missing: readonly string[]) => `not set in the shell that deploys: ${missing.join(", ")}`;

/** The local stack has no role to read ssm:/secretsmanager: with; the problem names each such reference. */
export function shellOnlySecretsMessage(secrets: Readonly<Record<string, SecretRef>>): string | undefined {
  const unreadable = Object.entries(secrets).filter(([, ref]) => ref.kind !== "env");
  if (unreadable.length === 0) return undefined;
  return `the local stack reads secrets from the deploying shell only (env:NAME); ${unreadable.map(([n, r]) => `service.secrets.${n} is ${describeSecretRef(r)}`).join(", ")}`;
}
