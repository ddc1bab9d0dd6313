import { spawn } from "node:child_process";
import type { CommandSpec } from "../shell-command.js";

/**
 * Open `url` in the user's browser without waiting for it: the configured command (the URL is appended
 * as one more argument; a string command is split on spaces), else `open` (macOS), `cmd /c start`
 * (Windows), `xdg-open` (elsewhere). Resolves false when the command could not be started.
 */
export function openBrowser(
  url: string,
  command: CommandSpec | undefined,
  platform: NodeJS.Platform,
): Promise<boolean> {
  const argv: string[] =
    command === undefined
      ? platform === "darwin"
        ? ["open"]
        : platform === "win32"
          ? ["cmd", "/c", "start", '""']
          : ["xdg-open"]
      : typeof command === "string"
        ? command.split(/\s+/).filter(Boolean)
        : [...command];
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, [...argv.slice(1), url], {
      stdio: "ignore",
      detached: true,
      windowsHide: true,
    });
    child.once("error", () => resolve(false));
    child.once("spawn", () => {
      child.unref();
      resolve(true);
    });
  });
}
