// The agent's commands as a process, for tests: `node --import ts-register.mjs agent-cli.ts agent …` or
// `… get …`. Wired like src/cli/main.ts wires them (commander), then exits with the command's code.
import { Command } from "commander";
import { agentCommand } from "../../../src/cli/agent.js";
import { getCommand } from "../../../src/cli/get.js";

const program = new Command().name("certfleet").exitOverride();
program
  .command("agent")
  .option("-c, --config <file>")
  .option("--once")
  .option("--json")
  .action(async (opts: { config?: string; once?: boolean; json?: boolean }) => {
    process.exit(await agentCommand(opts));
  });
program
  .command("get")
  .argument("<domains...>")
  .option("--out <dir>")
  .option("--json")
  .option("-c, --config <file>")
  .option("--key-type <type>")
  .option("--local-key")
  .action(
    async (
      domains: string[],
      opts: { out?: string; json?: boolean; config?: string; keyType?: string; localKey?: boolean },
    ) => {
      process.exit(await getCommand(domains, opts));
    },
  );
await program.parseAsync(process.argv);
