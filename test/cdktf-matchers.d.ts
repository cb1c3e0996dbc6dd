// Types of the matchers Testing.setupJest() adds (toBeValidTerraform, toHaveResourceWithProperties, ...).
// The second cdktf import path besides constructs/cdk.ts; a move to cdktn changes it too.
import "cdktf/lib/testing/adapters/jest";
