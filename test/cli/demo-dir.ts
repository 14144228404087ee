/**
 * A data directory with the ten demo users (`bulk-register`), made in-process with a cheap scrypt cost (the CLI
 * reads the cost from each key file), removed after the test file. Chats in it start with `--port 0`, so the
 * registered ports need not be free.
 */
import { bulkRegister } from "../../src/identity/register.ts";
import { TEST_SCRYPT_N, tempDataDir } from "../identity/temp.ts";

export const DEMO_BASE_PORT = 15_400;

export async function demoDataDir(label: string, basePort = DEMO_BASE_PORT): Promise<string> {
  const dataDir = tempDataDir(label);
  await demoUsersIn(dataDir, basePort);
  return dataDir;
}

/** The demo users in `dataDir` (created if need be), which the caller removes. */
export async function demoUsersIn(dataDir: string, basePort = DEMO_BASE_PORT): Promise<void> {
  await bulkRegister({ dataDir, basePort, scryptN: TEST_SCRYPT_N });
}

/** The chat flags for a demo user (password pass<i>) in `dataDir`, on a free port. */
export function chatArgs(dataDir: string, name: string, password: string, extra: string[] = []): string[] {
  return ["--username", name, "--password", password, "--port", "0", "--data-dir", dataDir, ...extra];
}
