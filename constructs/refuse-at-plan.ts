import { type IConstruct, Op, TerraformLocal } from "./cdk";

/** A Terraform lifecycle precondition. */
export interface PlanRefusal {
  readonly condition: unknown;
  readonly errorMessage: string;
}

/**
 * A precondition that fails `terraform plan` of this one stack with `message`, before anything changes, when
 * `value` exceeds `limit` (or always, without a limit; either may be a Terraform expression such as a data
 * source's list length). Synthesis itself succeeds, so the other stacks of the
 * same app still deploy: a problem that concerns only one target stops only that target.
 */
export function refuseAtPlan(scope: IConstruct, id: string, message: string, value = 1, limit = 0): PlanRefusal {
  // Terraform requires a condition to refer to something in the configuration: a local holding the value.
  const local = new TerraformLocal(scope, id, value);
  // cdktf renders a literal 0 operand as "undefined" (invalid Terraform): "<= 0" is written "< 1" for whole numbers.
  const condition = limit === 0 ? Op.lt(local.asNumber, 1) : Op.lte(local.asNumber, limit);
  return { condition, errorMessage: message };
}
