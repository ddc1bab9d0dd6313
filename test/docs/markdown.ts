import { readFile } from "node:fs/promises";

/**
 * Reading documentation pages as data: their fenced code blocks, inline code spans and the shell
 * command lines inside them, so tests can hold each snippet against the software it configures.
 */
export interface CodeBlock {
  /** The info string after the opening fence (`yaml`, `sh`, `caddyfile`, … or ""). */
  lang: string;
  text: string;
  /** The `##`/`###` heading the block is under ("" before the first). */
  section: string;
  /** 1-based line of the opening fence, for failure messages. */
  line: number;
  page: string;
}

export const REPO = new URL("../../", import.meta.url);

export async function readPage(page: string): Promise<string> {
  return readFile(new URL(page, REPO), "utf8");
}

export function codeBlocks(markdown: string, page: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split("\n");
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    const heading = /^#{2,3} (.*)$/.exec(lines[i]!);
    if (heading) section = heading[1]!.trim();
    const fence = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const end = lines.indexOf("```", i + 1);
    if (end < 0) throw new Error(`${page}:${i + 1}: unclosed code fence`);
    blocks.push({ lang: fence[1]!, text: lines.slice(i + 1, end).join("\n"), section, line: i + 1, page });
    i = end;
  }
  return blocks;
}

/** Inline `code` spans outside fenced blocks. */
export function inlineCode(markdown: string): string[] {
  const prose = markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "");
  return [...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
}

/** One simple command: leading VAR=value assignments, then the words. */
export interface ShellCommand {
  env: Record<string, string>;
  words: string[];
}

/**
 * The simple commands of a POSIX shell snippet, quote-aware, with `\`-continued lines joined and
 * comments dropped. Enough for documentation (no expansions: `"$KID"` stays `$KID`), and strict
 * enough that an unbalanced quote fails the test instead of silently mis-splitting.
 */
export function shellCommands(script: string): ShellCommand[] {
  const commands: ShellCommand[] = [];
  let words: string[] = [];
  let word: string | undefined;
  let quote: "'" | '"' | undefined;
  const endWord = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  const endCommand = () => {
    endWord();
    const env: Record<string, string> = {};
    while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!)) {
      const [name, ...value] = words.shift()!.split("=");
      env[name!] = value.join("=");
    }
    if (words.length > 0 || Object.keys(env).length > 0) commands.push({ env, words });
    words = [];
  };
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else word = (word ?? "") + c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (c === "\\" && script[i + 1] === "\n") {
      i++;
    } else if (c === "#" && word === undefined) {
      while (i + 1 < script.length && script[i + 1] !== "\n") i++;
    } else if (c === "\n" || c === ";" || c === "&" || c === "|") {
      endCommand();
    } else if (c === " " || c === "\t") {
      endWord();
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote) throw new Error(`unbalanced ${quote} in shell snippet:\n${script}`);
  endCommand();
  return commands;
}

/** `--flag=value` → `--flag`; other words unchanged. */
export function flagName(word: string): string {
  return word.startsWith("-") ? word.split("=")[0]! : word;
}

/** Every option (`--long`, `-s`) a `--help` text lists on its option lines. */
export function optionsInHelp(help: string): Set<string> {
  const options = new Set<string>();
  for (const line of help.split("\n")) {
    if (!/^\s+-/.test(line)) continue;
    // the option column: up to the first run of two spaces (the description starts after it)
    const column = line.trim().split(/\s{2,}/)[0]!;
    for (const m of column.matchAll(/(?:^|[\s,[])(--?[A-Za-z0-9][A-Za-z0-9._-]*)/g)) options.add(m[1]!);
  }
  return options;
}
