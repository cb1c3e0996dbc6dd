/**
 * The one module that imports the CDK for Terraform core. Everything else imports these names from here,
 * so moving to CDK Terrain (`cdktn`, its API-compatible fork) means changing the module names below.
 * Provider bindings are imported by deep path (`@cdktf/provider-aws/lib/instance`) where they are used.
 */

export type { ITerraformDependable, TerraformResource } from "cdktf";
export {
  Annotations,
  App,
  AssetType,
  DataResource,
  Fn,
  LocalBackend,
  Op,
  S3Backend,
  TerraformAsset,
  TerraformIterator,
  TerraformLocal,
  TerraformOutput,
  TerraformStack,
  TerraformVariable,
  Testing,
  Token,
} from "cdktf";
export { Construct, type IConstruct } from "constructs";
