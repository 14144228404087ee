/** Where the demo users of `chatnode bulk-register` live by default, and who they are. */
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_BASE_PORT = 12000;

/** The demo users of `chatnode bulk-register`: user i listens on basePort + i. Their passwords are public. */
export const DEFAULT_USERS: readonly { readonly name: string; readonly password: string }[] = [
  { name: "zoe", password: "pass0" },
  { name: "alice", password: "pass1" },
  { name: "bob", password: "pass2" },
  { name: "carol", password: "pass3" },
  { name: "dave", password: "pass4" },
  { name: "erin", password: "pass5" },
  { name: "frank", password: "pass6" },
  { name: "grace", password: "pass7" },
  { name: "heidi", password: "pass8" },
  { name: "ivan", password: "pass9" },
];
