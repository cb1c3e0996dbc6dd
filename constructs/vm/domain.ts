import type { IConstruct } from "../cdk";
import { type PlanRefusal, refuseAtPlan } from "../refuse-at-plan";
import type { NodeServiceSpec } from "../service/spec";

/**
 * HTTPS for a domain ends at the load balancer (ACM on the ALB, a DigitalOcean certificate on its balancer). One
 * machine on its own address would need a certificate on the machine itself (Let's Encrypt through Nginx), which is
 * not built: a spec with a domain stops that stack's plan, saying so, instead of serving the domain over plain HTTP.
 */
export function singleMachineDomainRefusal(scope: IConstruct, owner: string, spec: NodeServiceSpec): PlanRefusal[] {
  if (spec.domain === undefined) return [];
  return [
    refuseAtPlan(
      scope,
      "DomainOnOneMachine",
      `${owner} cannot serve service.domain ${spec.domain} over HTTPS: one machine would need its own certificate, which NodeScale does not issue yet. Set vm.machines to 2 or more (the load balancer ends TLS with a certificate that renews itself), or leave service.domain unset for HTTP on the machine's address.`,
    ),
  ];
}
