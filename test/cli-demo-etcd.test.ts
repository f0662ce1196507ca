// `sixpn demo --store etcd` (issue 12), as a user runs it: a 3-member etcd cluster and 3 hosts in
// namespaces, every edit through the operator CLI, etcd members killed and started again; every
// check passes and nothing it made is left. Root and etcd only: skipped (and counted) otherwise.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { SIXPN, isRoot, sh } from './helpers/netns.ts';
import { HAVE_ETCD } from './helpers/etcd.ts';

const rootSerial = isRoot() && HAVE_ETCD ? test.serial : test.serial.skip;
const run = promisify(execFile);
const env = { ...process.env, SIXPN_NODE: process.execPath };

rootSerial('sixpn demo --store etcd passes every check, etcd failures included, and leaves nothing behind', async (t) => {
  t.timeout(180_000);
  const t0 = Date.now();
  let stdout: string;
  try {
    ({ stdout } = await run(SIXPN, ['demo', '--store', 'etcd'], { env, timeout: 170_000 }));
  } catch (err) {
    return t.fail(`the demo failed:\n${(err as { stdout?: string }).stdout ?? ''}${(err as Error).message}`);
  }
  const seconds = (Date.now() - t0) / 1000;
  t.log(stdout.split('\n').slice(-2).join('\n'));
  const m = /^(\d+) passed, (\d+) failed/m.exec(stdout);
  t.truthy(m, stdout);
  t.is(Number(m![2]), 0, stdout);
  t.true(Number(m![1]) >= 20, 'every check ran');
  for (const must of [
    '3-member cluster', 'across hosts', 'is refused', 'machine stop web2', 'machine start web2', 'machine migrate db1',
    'leader m\\d killed', 'forwarding unchanged', 'store is disconnected', 'keeps forwarding', 'an edit meanwhile fails',
    'every host reconnects', 'a new edit applies on all 3',
  ]) {
    t.regex(stdout, new RegExp(`^ ok .*${must}`, 'm'), must);
  }
  t.true(seconds < 120, `took ${seconds} s`);
  const tag = /sixpn demo --store etcd (\w+):/.exec(stdout)![1];
  t.false((await sh('ip', ['netns', 'list'])).includes(tag), 'its namespaces are gone');
  t.false(existsSync('/etc/netns') && readdirSync('/etc/netns').some((d) => d.includes(tag)));
  t.false(readdirSync('/run/sixpn').some((f) => f.includes(tag)), 'its status sockets are gone');
  t.false((await sh('ps', ['-eo', 'args'])).includes(`sixpn-demo-etcd-${tag}`), 'its processes are gone');
});
