// Operators' errors in one line with what to do: sixpn-wg without root, without
// CAP_NET_ADMIN, and in its default (detaching) mode, which shows its child's reason.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { explainStartError } from '../src/cli/start-errors.ts';
import { SIXPN_WG, isRoot } from './helpers/netns.ts';

const pexec = promisify(execFile);
const rootTest = isRoot() ? test : test.skip; // dropping root or a capability needs root first
const env = { ...process.env, SIXPN_NODE: process.execPath };

async function stderrOf(cmd: string, args: string[]): Promise<string> {
  const err = await pexec(cmd, args, { env, timeout: 30_000 }).then(() => null, (e: { stderr?: string }) => e);
  return err?.stderr?.trim() ?? '(it started)';
}

test('explainStartError: no /dev/net/tun, other errors unchanged', (t) => {
  t.regex(explainStartError(Object.assign(new Error('open /dev/net/tun: No such file or directory (ENOENT)'), { code: 'ENOENT' })), /^no \/dev\/net\/tun .*modprobe tun/);
  t.is(explainStartError(new Error('something else')), 'something else');
});

for (const detached of [false, true]) {
  const mode = detached ? 'detaching (default)' : '-f';
  rootTest(`sixpn-wg ${mode}, not root: one line saying so`, async (t) => {
    const args = ['--reuid=65534', '--regid=65534', '--clear-groups', SIXPN_WG, ...(detached ? [] : ['-f']), `sxse${process.pid % 1000}`];
    const out = await stderrOf('setpriv', args);
    t.regex(out, /^sixpn-wg: (sxse\d+: )?not root: creating a TUN device needs root or CAP_NET_ADMIN/);
    t.is(out.split('\n').length, 1, out);
  });
  (isRoot() && existsSync('/usr/sbin/capsh') ? test : test.skip)(`sixpn-wg ${mode}, root without CAP_NET_ADMIN: one line saying so`, async (t) => {
    const out = await stderrOf('/usr/sbin/capsh', ['--drop=cap_net_admin', '--', '-c', `${SIXPN_WG} ${detached ? '' : '-f'} sxsf${process.pid % 1000}`]);
    t.regex(out, /lacks CAP_NET_ADMIN/);
    t.false(out.includes('run with -f'), out);
    t.is(out.split('\n').length, 1, out);
  });
}
