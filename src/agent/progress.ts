/**
 * A progress line on stderr while the agent waits for the server (a first issuance can take a minute):
 * nothing for the first 2 s, then the elapsed time — redrawn in place on a terminal, a new line every
 * 10 s otherwise. `stop` clears it.
 */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export function startProgress(
  label: string,
  stream: ProgressStream,
  now: () => number = Date.now,
): () => void {
  const started = now();
  const tty = stream.isTTY === true;
  let shown = false;
  let lastLine = 0;
  const timer = setInterval(() => {
    const seconds = Math.round((now() - started) / 1000);
    if (seconds < 2) return;
    if (tty) {
      stream.write(`\r${label} (${seconds}s)\u001b[K`);
      shown = true;
    } else if (seconds - lastLine >= 10 || lastLine === 0) {
      lastLine = seconds;
      stream.write(`${label} (${seconds}s)\n`);
    }
  }, 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (shown) stream.write("\r\u001b[K");
  };
}
