import { PackError } from "../constructs/release/release-pack";
import { ConfigError, InvalidPropError } from "../constructs/service/errors";
import { TemplateError } from "../constructs/template";

/** Runs `build`; a bad configuration prints its list of problems and exits 1 with no stack trace. */
export function exitOnConfigError<T>(build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof TemplateError || err instanceof InvalidPropError) {
      process.stderr.write(`nodescale: invalid configuration\n${err.message}\n`);
      process.exit(1);
    }
    if (err instanceof PackError) {
      process.stderr.write(`nodescale: cannot package the app\n${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
