/** A minimal `chatnode` with only the user commands (plus `whoami`, to exercise unlockUser), for the CLI tests. */
import { Command } from "commander";
import { addUserCommands, unlockUser } from "../../src/cli/users.ts";

const program = new Command("chatnode");
addUserCommands(program);
program
  .command("whoami")
  .requiredOption("--username <name>")
  .requiredOption("--password <password>")
  .option("--data-dir <dir>")
  .action(async (flags: { username: string; password: string; dataDir?: string }) => {
    const me = await unlockUser(flags);
    process.stdout.write(`${me.username} ${me.peerId}\n`);
  });
await program.parseAsync(process.argv);
