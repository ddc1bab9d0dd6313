import { Command } from "commander";
import { CertfleetError } from "../core/errors.js";
import { renderConfigReference } from "../config/reference.js";
import { configCheckCommand } from "./config-check.js";
import { serveCommand } from "./serve.js";

/**
 * The `certfleet` command. Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage.
 */
const program = new Command()
  .name("certfleet")
  .description(
    "Certificates for fleets of machines: one server holds the CA accounts and DNS credentials and hands each machine only the certificates it may have.",
  )
  .version("0.1.0")
  .showHelpAfterError();

program
  .command("serve")
  .description("run the certificate server (no --config: SQLite + embedded CA in ./data)")
  .option("-c, --config <file>", "configuration file (YAML); also CERTFLEET_CONFIG")
  .action(async (opts: { config?: string }) => serveCommand(opts));

const config = program.command("config").description("work with configuration files");
config
  .command("check")
  .description("validate a configuration file and the CERTFLEET_* environment")
  .option("-c, --config <file>", "configuration file (YAML)")
  .option("--json", "machine-readable output")
  .action(async (opts: { config?: string; json?: boolean }) => {
    process.exitCode = await configCheckCommand(opts);
  });

config
  .command("reference")
  .description("print the configuration reference (Markdown), generated from the schema")
  .action(() => {
    process.stdout.write(renderConfigReference());
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CertfleetError) {
    process.stderr.write(`certfleet: ${e.message}\n`);
    process.exit(e.code === "config_invalid" ? 2 : 1);
  }
  process.stderr.write(`certfleet: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
