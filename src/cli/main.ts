import { sshLoginCommand, type SshLoginCommandOptions } from "./ssh.js";
import { Command } from "commander";
import { CertfleetError } from "../core/errors.js";
import { renderConfigReference } from "../config/reference.js";
import { acmeEabCreateCommand, acmeEabListCommand, acmeEabRevokeCommand } from "./acme.js";
import {
  certificatesListCommand,
  certificatesRenewCommand,
  certificatesRevokeCommand,
  certificatesShowCommand,
} from "./certificates.js";
import { agentCommand } from "./agent.js";
import { getCommand } from "./get.js";
import { configCheckCommand } from "./config-check.js";
import {
  identityCreateCommand,
  identityDeleteCommand,
  identityListCommand,
  identityRotateSecretCommand,
  identitySetEnabledCommand,
  settingsLegacyCommand,
} from "./identity.js";
import { identityImportCommand } from "./identity-import.js";
import { revokeCommand } from "./revoke.js";
import { serveCommand } from "./serve.js";
import { storageReencryptCommand, storageRotateKeyCommand } from "./storage.js";
import { storageBackupCommand, storageMigrateCommand, storageRestoreCommand } from "./storage-backup.js";

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
  .option("--debug", "debug logging, and stack traces with start-up errors")
  .action(async (opts: { config?: string; debug?: boolean }) => serveCommand(opts));

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

const collect = (value: string, previous: string[] = []) => [...previous, value];
const configOption = ["-c, --config <file>", "configuration file (YAML); also CERTFLEET_CONFIG"] as const;

program
  .command("agent")
  .description(
    "run the agent: fetch, install and renew this machine's certificates (exit codes in docs/agent/README.md)",
  )
  .option(
    "-c, --config <file>",
    "agent configuration (YAML); also CERTFLEET_AGENT_CONFIG, else /etc/certfleet/agent.yaml",
  )
  .option("--once", "sync every certificate once and exit (cron, CI)")
  .option("--json", "machine-readable output")
  .action(async (opts: { config?: string; once?: boolean; json?: boolean }) => {
    process.exit(await agentCommand(opts));
  });

program
  .command("get")
  .description(
    "fetch one certificate ad hoc (names from the arguments, server and auth from the agent config)",
  )
  .argument("<domains...>", "names for one certificate")
  .option("--out <dir>", "write cert.pem, chain.pem, fullchain.pem and key.pem here")
  .option("--json", "print the result as JSON")
  .option("-c, --config <file>", "agent configuration (YAML)")
  .option("--key-type <type>", "ec256 | ec384 | rsa2048 | rsa3072 | rsa4096")
  .option("--local-key", "make the key here and send a CSR: the key never leaves this machine")
  .action(
    async (
      domains: string[],
      opts: { out?: string; json?: boolean; config?: string; keyType?: string; localKey?: boolean },
    ) => {
      process.exit(await getCommand(domains, opts));
    },
  );

const ssh = program.command("ssh").description("SSH certificates (docs/ssh.md)");
ssh
  .command("login")
  .description(
    "get a user certificate with the agent config's auth method: into ssh-agent (SSH_AUTH_SOCK), or KEY-cert.pub with --key",
  )
  .requiredOption("-p, --principal <name>", "principal (login name) to certify; repeat for more", collect)
  .option("--key <file>", "certify this key's .pub and write <file>-cert.pub beside it")
  .option("--validity <duration>", "e.g. 8h (default: the server's, 16h)")
  .option("--json", "print the result as JSON")
  .option("-c, --config <file>", "agent configuration (YAML); also CERTFLEET_AGENT_CONFIG")
  .action(async (opts: SshLoginCommandOptions) => {
    process.exit(await sshLoginCommand(opts));
  });

const identity = program.command("identity").description("manage identity records (who may get which names)");
identity
  .command("create")
  .description("create an identity record; client_secret identities print their secret once")
  .requiredOption("--name <name>", "display name")
  .requiredOption(
    "--method <method>",
    "jwt | azure | aws | gcp | kubernetes | spiffe | client_secret | certificate",
  )
  .option("--binding <key=value>", "binding field (repeat), see docs/auth/methods.md", collect, [])
  .option(
    "--grant <pattern>",
    "name pattern it may obtain (repeat): example.com, *.example.com, .example.com, *",
    collect,
    [],
  )
  .option("--admin", "give it the admin permission")
  .option("--disabled", "create it disabled")
  .option(
    "--issue-client-cert",
    "certificate method: issue a client certificate from the embedded CA and bind the record to it",
  )
  .option("--validity <days>", "with --issue-client-cert: lifetime in days (default 90)")
  .option("--public-key <file>", "with --issue-client-cert: certify this SPKI PEM instead of making a key")
  .option("--cert-out <file>", "with --issue-client-cert: write the certificate and chain here")
  .option("--key-out <file>", "with --issue-client-cert: write the new private key here (mode 0600)")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (opts) => {
    process.exitCode = await identityCreateCommand(opts);
  });
identity
  .command("import <file>")
  .description(
    "import identities (YAML/JSON) keeping their UUIDs and client id/secret; see docs/migrating.md",
  )
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (file: string, opts) => {
    process.exitCode = await identityImportCommand(file, opts);
  });
identity
  .command("list")
  .description("list identity records")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (opts) => {
    process.exitCode = await identityListCommand(opts);
  });
for (const [name, enabled] of [
  ["enable", true],
  ["disable", false],
] as const) {
  identity
    .command(`${name} <id>`)
    .description(`${name} an identity record (takes effect on its next request)`)
    .option(...configOption)
    .option("--json", "machine-readable output")
    .action(async (id: string, opts) => {
      process.exitCode = await identitySetEnabledCommand(id, enabled, opts);
    });
}
identity
  .command("delete <id>")
  .description("delete an identity record")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (id: string, opts) => {
    process.exitCode = await identityDeleteCommand(id, opts);
  });
identity
  .command("rotate-secret <id>")
  .description("issue a new client secret (printed once); the old one stops working")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (id: string, opts) => {
    process.exitCode = await identityRotateSecretCommand(id, opts);
  });

const acme = program.command("acme").description("the built-in ACME server");
const eab = acme.command("eab").description("External Account Binding keys");
eab
  .command("create")
  .description(
    'make an EAB key whose ACME account may obtain exactly the granted names; --json prints {"kid","hmacKey"}',
  )
  .option(
    "--grant <pattern>",
    "name pattern (repeat): example.com, *.example.com, .example.com, *",
    collect,
    [],
  )
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (opts: { grant: string[]; config?: string; json?: boolean }) => {
    process.exitCode = await acmeEabCreateCommand(opts);
  });
eab
  .command("list")
  .description("list EAB keys: grants, owner, bound account, last use, revoked (never the HMAC key)")
  .option(...configOption)
  .option("--json", "machine-readable output (an array, all keys)")
  .action(async (opts: { config?: string; json?: boolean }) => {
    process.exitCode = await acmeEabListCommand(opts);
  });
eab
  .command("revoke <kid>")
  .description("revoke an EAB key: it binds no new account and its accounts can no longer order")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (kid: string, opts: { config?: string; json?: boolean }) => {
    process.exitCode = await acmeEabRevokeCommand(kid, opts);
  });

const certificates = program
  .command("certificates")
  .description("the inventory: every certificate certfleet manages, whoever asked for it");
certificates
  .command("list")
  .description("list certificates (all pages); a table, or a JSON array with --json")
  .option("--status <status>", "valid | pending | failed | revoked | expired")
  .option("--issuer <id>", "only this issuer's")
  .option("--owner <owner>", "only this owner's: identity:<id>, acme:<profile>:<account>, eab:<kid>")
  .option("--expiring-within <duration>", "notAfter within this long (30d, 12h, 3600s); expired included")
  .option("--search <text>", "case-insensitive substring of any name")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (opts) => {
    process.exitCode = await certificatesListCommand(opts);
  });
certificates
  .command("show <id>")
  .description("one certificate's inventory entry")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (id: string, opts) => {
    process.exitCode = await certificatesShowCommand(id, opts);
  });
certificates
  .command("renew <id>")
  .description("renew now through the certificate manager (certificates whose key certfleet holds)")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (id: string, opts) => {
    process.exitCode = await certificatesRenewCommand(id, opts);
  });
certificates
  .command("revoke <id>")
  .description("revoke at the issuer, for every holder (ACME clients included); asks first unless --yes")
  .option(
    "--reason <reason>",
    "RFC 5280 reason: unspecified, keyCompromise, superseded, cessationOfOperation, affiliationChanged, …",
    "unspecified",
  )
  .option("--replace", "issue a replacement with a fresh key now (server-held keys)")
  .option("-y, --yes", "do not ask for confirmation")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (id: string, opts) => {
    process.exitCode = await certificatesRevokeCommand(id, opts);
  });

const storageCommand = program.command("storage").description("the database and its master key");
storageCommand
  .command("rotate-key")
  .description(
    "new master key file; re-encrypt every private key and secret under it (stop the server first)",
  )
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (opts: { config?: string; json?: boolean }) => {
    process.exitCode = await storageRotateKeyCommand(opts);
  });
storageCommand
  .command("reencrypt")
  .description("re-encrypt every value not yet sealed under the current master key")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (opts: { config?: string; json?: boolean }) => {
    process.exitCode = await storageReencryptCommand(opts);
  });
storageCommand
  .command("backup")
  .description(
    "online, consistent copy of the SQLite database (while the server runs); the master key is not in it (PostgreSQL: pg_dump)",
  )
  .requiredOption("--out <file>", "the backup file to write (must not exist)")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (opts: { out: string; config?: string; json?: boolean }) => {
    process.exitCode = await storageBackupCommand(opts);
  });
storageCommand
  .command("restore")
  .description(
    "make a backup the configured SQLite database (which must not exist yet); needs the master key the backup was made under",
  )
  .requiredOption("--from <file>", "a file written by `certfleet storage backup`")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (opts: { from: string; config?: string; json?: boolean }) => {
    process.exitCode = await storageRestoreCommand(opts);
  });
storageCommand
  .command("migrate")
  .description("apply pending database migrations (serve also does this at start)")
  .option("--dry-run", "only list the pending migrations; change nothing")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (opts: { dryRun?: boolean; config?: string; json?: boolean }) => {
    process.exitCode = await storageMigrateCommand(opts);
  });

program
  .command("revoke")
  .description(
    "revoke the certificate for these names at its CA and replace it with one for a fresh key (works beside a running server)",
  )
  .option("--domain <name>", "a name of the certificate (repeat for all of them)", collect, [])
  .option(
    "--reason <reason>",
    "RFC 5280 reason: unspecified, keyCompromise, superseded, cessationOfOperation, affiliationChanged, …",
    "unspecified",
  )
  .option("--key-type <type>", "the certificate's key type when several exist for the names")
  .option("--no-replace", "revoke only; the next request for the names issues a new certificate")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(
    async (opts: {
      domain: string[];
      reason?: string;
      keyType?: string;
      replace: boolean;
      config?: string;
      json?: boolean;
    }) => {
      process.exitCode = await revokeCommand(opts);
    },
  );

const settings = program.command("settings").description("organisation settings");
settings
  .command("legacy")
  .description(
    "enable or disable the legacy methods (client_secret, certificate); applies within a second, no restart",
  )
  .option("--enable", "accept them")
  .option("--disable", "refuse them")
  .option(...configOption)
  .option("--json", "machine-readable output")
  .action(async (opts: { enable?: boolean; disable?: boolean; config?: string; json?: boolean }) => {
    if (!opts.enable === !opts.disable) {
      process.stderr.write("certfleet: give exactly one of --enable or --disable\n");
      process.exitCode = 2;
      return;
    }
    process.exitCode = await settingsLegacyCommand(Boolean(opts.enable), opts);
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CertfleetError) {
    process.stderr.write(`certfleet: ${e.message}\n`);
    process.exit(e.code === "config_invalid" || e.status === 400 || e.status === 404 ? 2 : 1);
  }
  process.stderr.write(`certfleet: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
