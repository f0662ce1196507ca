// The README's main job, as a user runs it: `sixpn demo` builds 3 hosts, 2 orgs and 7 machines
// in namespaces, checks them live and tears everything down. Then `sixpn demo --keep` and
// `sixpn demo down` (issue 14): the kept demo runs (its namespaces, `sixpn up` processes and
// status sockets are there), a second --keep (or a plain demo, which would take its status
// sockets) is refused with the command that ends it, and `demo down` removes every namespace,
// interface, process and file. One file, serial: two demos at once share host names (ams1…) and
// would take each other's status sockets.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { DEMO_STATE_FILE, type DemoState, readDemoState } from '../src/cli/demo-state.ts';
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

let kept: DemoState | undefined;
test.after.always(async () => {
  // a failed test leaves nothing either
  if (kept !== undefined && readDemoState()?.tag === kept.tag) await run(SIXPN, ['demo', 'down'], { env }).catch(() => undefined);
});

const alive = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(kept!.dir);
  } catch {
    return false;
  }
};

rootSerial('sixpn demo --keep leaves it running; a second --keep is refused; sixpn demo down removes everything', async (t) => {
  t.timeout(180_000);
  if (readDemoState() !== undefined) return t.fail(`a kept demo is already recorded at ${DEMO_STATE_FILE}; end it with sixpn demo down`);
  const { stdout } = await run(SIXPN, ['demo', '--keep'], { env, timeout: 120_000 });
  t.regex(stdout, /^\d+ passed, 0 failed/m, stdout);
  t.regex(stdout, /end it: {2}sixpn demo down/);
  kept = readDemoState();
  t.truthy(kept, 'recorded');
  const tag = /sixpn demo (\w+):/.exec(stdout)![1];
  t.is(kept!.tag, tag);
  const before = await sh('ip', ['netns', 'list']);
  t.is(before.split('\n').filter((l) => l.includes(tag)).length, kept!.namespaces.length - 1, before); // web4 was removed by the demo
  const ups = kept!.pids.filter(alive);
  t.is(ups.length, 3, 'the three sixpn up');
  const status = await run(SIXPN, ['status', 'ams1', '--json'], { env });
  t.is((JSON.parse(status.stdout) as { machines: unknown[] }).machines.length, 3);

  const second = await run(SIXPN, ['demo', '--keep'], { env, timeout: 20_000 }).then(() => undefined, (e: { code: number; stderr: string }) => e);
  t.truthy(second, 'refused');
  t.is(second!.code, 1);
  t.regex(second!.stderr, new RegExp(`a kept demo \\(${tag}, started .*\\) is still running; end it first with: {2}sixpn demo down`));
  const plain = await run(SIXPN, ['demo'], { env, timeout: 20_000 }).then(() => undefined, (e: { code: number; stderr: string }) => e);
  t.is(plain?.code, 1, 'a plain demo too (it would take the kept one\'s status sockets)');
  t.regex(plain!.stderr, /end it first with: {2}sixpn demo down/);
  t.is(readDemoState()?.tag, tag, 'the kept one is untouched');
  t.is(kept!.pids.filter(alive).length, 3);

  const down = await run(SIXPN, ['demo', 'down'], { env, timeout: 30_000 });
  t.regex(down.stdout, new RegExp(`^sixpn demo down: demo ${tag} removed: \\d+ processes stopped, ${kept!.namespaces.length - 1} namespaces`, 'm'));
  t.false(existsSync(DEMO_STATE_FILE));
  t.is(kept!.pids.filter(alive).length, 0, 'its processes are gone');
  const after = await sh('ip', ['netns', 'list']);
  t.false(after.includes(tag), 'its namespaces are gone');
  t.false((await sh('ip', ['-o', 'link', 'show'])).includes(tag), 'no interface of it in the root namespace');
  t.false(existsSync('/etc/netns') && readdirSync('/etc/netns').some((d) => d.startsWith(tag)));
  for (const p of kept!.paths) t.false(existsSync(p), p);
  for (const p of kept!.statusSockets) t.false(existsSync(p), p);
  t.false(existsSync(kept!.dir));
  const again = await run(SIXPN, ['demo', 'down'], { env }).then(() => undefined, (e: { code: number; stderr: string }) => e);
  t.is(again?.code, 1);
  t.regex(again!.stderr, /no kept demo/);
});
