// `sixpn demo` through its launcher, as a user runs it.
import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SIXPN = fileURLToPath(new URL('../bin/sixpn', import.meta.url));

test('sixpn demo passes every check and exits 0', async (t) => {
  const { stdout } = await run(SIXPN, ['demo'], { env: { ...process.env, SIXPN_NODE: process.execPath }, timeout: 60_000 });
  t.regex(stdout, /^ ok +1000 encrypted echo round trips +1000\/1000/m);
  t.regex(stdout, /^12 passed, 0 failed$/m);
  t.notRegex(stdout, /FAIL/);
});

test('sixpn with an unknown command exits 2 with usage', async (t) => {
  const err = await t.throwsAsync(run(SIXPN, ['bogus'], { env: { ...process.env, SIXPN_NODE: process.execPath } }));
  t.is((err as { code?: number }).code, 2);
  t.regex((err as { stderr?: string }).stderr ?? '', /unknown command "bogus"/);
});
