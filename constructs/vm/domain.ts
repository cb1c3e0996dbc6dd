import type { IConstruct } from "../cdk";
import { type PlanRefusal, refuseAtPlan } from "../refuse-at-plan";
import type { NodeServiceSpec } from "../service/spec";

/**
 * One Droplet on its own address would end TLS itself, with a certificate it gets once the domain points at it. A
 * replacement Droplet (a changed spec; every release without a deploy key) has nowhere to take the certificate over
 * from (unlike EC2, where the machine keeps certbot's folder in its release bucket through its role), so clients
 * would see an untrusted certificate until it has its own. A spec with a domain stops that stack's plan, saying so.
 */
export function singleMachineDomainRefusal(scope: IConstruct, owner: string, spec: NodeServiceSpec): PlanRefusal[] {
  if (spec.domain === undefined) return [];
  return [
    refuseAtPlan(
      scope,
      "DomainOnOneMachine",
      `${owner} cannot serve service.domain ${spec.domain} over HTTPS without a gap: a replacement Droplet could not take over the certificate of the one it replaces. Set vm.machines to 2 or more (the DigitalOcean load balancer ends TLS with a certificate that renews itself), deploy one machine with vm-pm2 (EC2 gets its own Let's Encrypt certificate), or leave service.domain unset for HTTP on the Droplet's address.`,
    ),
  ];
}
