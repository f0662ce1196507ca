// The status socket of `sixpn up` (src/host/status.ts): root-only (directory 0700, socket
// 0600); a socket left behind by a killed process is replaced; a live one is taken over, and
// the server knows it did.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { STATUS_DIR, StatusServer, readStatus, statusSocketPath } from '../src/host/status.ts';
import { isRoot } from './helpers/netns.ts';

const rootTest = isRoot() ? test.serial : test.serial.skip; // /run/sixpn is root's
const pexec = promisify(execFile);
const source = { status: () => ({ ok: true }), conntrack: () => [] };
const name = (s: string) => `sxst${process.pid}${s}`;

rootTest('the socket is 0600 in a 0700 directory, and answers', async (t) => {
  const s = await StatusServer.listen(name('a'), source);
  t.teardown(() => s.close());
  t.is(statSync(s.path).mode & 0o777, 0o600);
  t.is(statSync(STATUS_DIR).mode & 0o777, 0o700);
  t.deepEqual(await readStatus(s.path), { ok: true });
});

rootTest('a second server for the same host name takes the socket over and says so', async (t) => {
  const s = await StatusServer.listen(name('b'), source);
  t.teardown(() => s.close());
  t.false(s.replacedLive);
  const second = await StatusServer.listen(name('b'), { ...source, status: () => ({ second: true }) });
  t.teardown(() => second.close());
  t.true(second.replacedLive);
  t.deepEqual(await readStatus(second.path), { second: true });
});

rootTest('a socket left by a process killed with SIGKILL is replaced', async (t) => {
  const path = statusSocketPath(name('c'));
  // a process that listens on the path and is killed before it can clean up
  await pexec(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]).catch(() => undefined);
  t.true(existsSync(path), 'the stale socket file is there');
  const s = await StatusServer.listen(name('c'), source);
  t.teardown(() => s.close());
  t.deepEqual(await readStatus(s.path), { ok: true });
});
