// The README's main job, as a user runs it: `sixpn demo` builds 3 hosts, 2 orgs and 7 machines
// in namespaces, checks them live and tears everything down.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { SIXPN, isRoot, sh } from './helpers/netns.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

const run = promisify(execFile);
const env = { ...process.env, SIXPN_NODE: process.execPath };

rootSerial('sixpn demo passes every check, in well under a minute, and leaves nothing behind', async (t) => {
  t.timeout(120_000);
  const t0 = Date.now();
  const { stdout } = await run(SIXPN, ['demo'], { env, timeout: 110_000 });
  const seconds = (Date.now() - t0) / 1000;
  t.log(stdout.split('\n').slice(-4).join('\n'));
  const m = /^(\d+) passed, (\d+) failed/m.exec(stdout);
  t.truthy(m, stdout);
  t.is(Number(m![2]), 0, stdout);
  t.true(Number(m![1]) >= 17, 'every check ran');
  for (const must of ['same host', 'across hosts', 'TCP web1', 'refused', 'source address is dropped', 'NXDOMAIN', 'stopped', 'migrated', 'old address']) {
    t.regex(stdout, new RegExp(`^ ok .*${must}`, 'm'), must);
  }
  t.true(seconds < 60, `took ${seconds} s`);
  const tag = /sixpn demo (\w+):/.exec(stdout)![1];
  const after = await sh('ip', ['netns', 'list']);
  t.false(after.includes(tag), 'its namespaces are gone');
  t.false(existsSync('/etc/netns') && readdirSync('/etc/netns').some((d) => d.startsWith(tag)));
});

test('sixpn demo-noise: two WireGuard protocol endpoints over UDP on loopback', async (t) => {
  const { stdout } = await run(SIXPN, ['demo-noise'], { env, timeout: 60_000 });
  t.regex(stdout, /^ ok +1000 encrypted echo round trips +1000\/1000/m);
  t.regex(stdout, /^12 passed, 0 failed$/m);
});

test('sixpn with an unknown command exits 2 with usage', async (t) => {
  const err = await t.throwsAsync(run(SIXPN, ['bogus'], { env }));
  t.is((err as { code?: number }).code, 2);
  t.regex((err as { stderr?: string }).stderr ?? '', /unknown command "bogus"/);
});
