// Validates Kubernetes manifests (a JSON array on stdin) with kubernetes-models, whose validators are compiled from
// the Kubernetes OpenAPI schema (ESM only, hence this child process). Prints a JSON array of problems: [] when all
// are valid.
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const manifests = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const problems = [];
for (const manifest of manifests) {
  const [group, version] = manifest.apiVersion.includes("/") ? manifest.apiVersion.split("/") : ["", manifest.apiVersion];
  const module = await import(group === "" ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`);
  const Model = module[manifest.kind];
  if (Model === undefined) {
    problems.push(`${manifest.apiVersion} ${manifest.kind}: no such kind in the schema`);
    continue;
  }
  try {
    new Model(manifest).validate();
  } catch (error) {
    problems.push(`${manifest.kind} ${manifest.metadata?.name}: ${error.message}`);
  }
}
process.stdout.write(JSON.stringify(problems));
