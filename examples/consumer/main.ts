// A team's own cdktf app: its own stack, its own provider, NodeScale's constructs composed into it.
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider";
import { App, TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { NodeServiceSpec, NodeWorkload, PostDeployHealthCheck } from "nodescale";

class OrdersStack extends TerraformStack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    // Stacks create providers; NodeScale's constructs never do. Here: a cluster the team already has.
    new KubernetesProvider(this, "Cluster", { configPath: "~/.kube/config", configContext: "staging" });

    const spec = NodeServiceSpec.parse({ name: "orders", port: 8080, shutdownGraceSeconds: 20 });
    const workload = new NodeWorkload(this, "Orders", {
      spec,
      image: "ghcr.io/acme/orders:1.4.2",
      host: "orders.staging.example.com",
      minReplicas: 3,
    });
    // Escape hatch: one field of one underlying resource, overridden without forking the construct.
    workload.deployment.addOverride("spec.template.spec.priority_class_name", "business-critical");

    const url = "http://orders.staging.example.com";
    new PostDeployHealthCheck(this, "Health", { url, spec, dependsOn: [workload.deployment] });
    new TerraformOutput(this, "url", { value: url });
  }
}

const app = new App();
new OrdersStack(app, "orders");
app.synth();
