// The shell blocks of a guide (docs/deploy.md), for tests that run them. A block is a ```sh
// fence whose first line says where it runs:
//   # on ams1                      one server
//   # on ams1, ord1 and syd1       several, in that order
//   # on the laptop                the external peer
// A block that cannot run in a test carries a second line `# not run by the test (reason)`;
// the test does the same another way. Blocks without an `# on` line are an error, so no command
// of the guide escapes the test unnoticed.
import { readFileSync } from 'node:fs';

export interface DocBlock {
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** Where it runs: server names, or `laptop`. */
  readonly on: readonly string[];
  /** The reason, for a block the test does not run. */
  readonly skip?: string;
  /** The block's text, fence lines excluded. */
  readonly text: string;
}

export function shellBlocks(file: string): DocBlock[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\S*)/.exec(lines[i]);
    if (!fence) continue;
    let j = i + 1;
    while (j < lines.length && !lines[j].startsWith('```')) j++;
    const body = lines.slice(i + 1, j);
    if (fence[1] === 'sh' || fence[1] === 'bash' || fence[1] === 'shell') {
      const where = /^# on (.+)$/.exec(body[0] ?? '');
      if (!where) throw new Error(`${file}:${i + 1}: a shell block must start with "# on SERVER" (or "# on the laptop")`);
      const on = where[1].replace(/^the /, '').split(/,\s*|\s+and\s+/).map((s) => s.trim()).filter(Boolean);
      const skip = /^# not run by the test \((.+)\)$/.exec(body[1] ?? '')?.[1];
      out.push({ line: i + 1, on, ...(skip ? { skip } : {}), text: body.join('\n') });
    }
    i = j;
  }
  return out;
}
