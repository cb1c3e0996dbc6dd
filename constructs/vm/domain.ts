import type { IConstruct } from "../cdk";
import { type PlanRefusal, refuseAtPlan } from "../refuse-at-plan";
import type { NodeServiceSpec } from "../service/spec";

/**
 * One Droplet on its own address ends TLS itself, with a certificate it gets once the domain points at it. A
 * replacement Droplet takes the certificate over from the one it replaces over the SSH release channel (the deploy
 * key); without that channel (the release in user data, a new Droplet at every release) it could not, and clients
 * would see an untrusted certificate until it had its own. Such a spec stops that stack's plan, saying so.
 */
export function singleMachineDomainRefusal(scope: IConstruct, owner: string, spec: NodeServiceSpec): PlanRefusal[] {
  if (spec.domain === undefined) return [];
  return [
    refuseAtPlan(
      scope,
      "DomainOnOneMachine",
      `${owner} cannot serve service.domain ${spec.domain} over HTTPS without a gap: without a deploy key a replacement Droplet (one per release) could not take over the certificate of the one it replaces. Set vm.digitalocean.deployKey (releases and the certificate travel over SSH), set vm.machines to 2 or more (the DigitalOcean load balancer ends TLS), or leave service.domain unset for HTTP on the Droplet's address.`,
    ),
  ];
}
