// src/uapi server over raw unix-socket clients: the socket file's life (mode, stale and live
// sockets, deletion notice, close), several requests per connection, protocol errors, garbage,
// many clients, backpressure.
import test from 'ava';
import { connect, createServer, type Socket } from 'node:net';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, linkSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { MemoryDevice, type UapiDevice } from '../src/uapi/index.ts';
import { UapiServer, uapiSocketPath, isValidInterfaceName, type UapiServerOptions } from '../src/uapi/server.ts';

const K1 = '11'.repeat(32);

function tmpDir(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sixpn-uapi-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function start(t: { teardown: (f: () => void | Promise<void>) => void }, device: UapiDevice, options: UapiServerOptions = {}, name = 'wgtest'): Promise<UapiServer> {
  const srv = await UapiServer.listen(name, device, options);
  t.teardown(() => srv.close());
  return srv;
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads until `replies` replies (each ending "errno=N\n\n") have arrived or the peer closes. */
function read(s: Socket, replies: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const parts: string[] = [];
    let tail = ''; // the end of what came before, in case a terminator is split
    let seen = 0;
    const finish = (closed: boolean): void => {
      s.off('data', onData);
      resolve({ text: parts.join(''), closed });
    };
    const onData = (b: Buffer): void => {
      const part = b.toString('latin1');
      parts.push(part);
      const window = tail + part;
      const re = /errno=-?\d+\n\n/g;
      let end = 0;
      for (let m = re.exec(window); m !== null; m = re.exec(window)) {
        if (re.lastIndex > tail.length) seen++; // not one already counted in the tail
        end = re.lastIndex;
      }
      tail = window.slice(Math.max(end, window.length - 16));
      if (seen >= replies) finish(false);
    };
    s.on('data', onData);
    s.once('close', () => finish(true));
    s.once('error', () => {});
  });
}

async function exchange(path: string, request: string, replies = 1): Promise<{ text: string; closed: boolean }> {
  const s = await open(path);
  const r = read(s, replies);
  s.write(request);
  const out = await r;
  s.destroy();
  return out;
}

function waitClose(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

test('creates the directory 0755 and the socket 0600; close() unlinks the socket', async (t) => {
  const dir = join(tmpDir(t), 'run', 'wireguard');
  const srv = await start(t, new MemoryDevice(), { dir });
  t.is(statSync(dir).mode & 0o777, 0o755);
  const st = lstatSync(srv.path);
  t.true(st.isSocket());
  t.is(st.mode & 0o777, 0o600);
  t.is(srv.path, uapiSocketPath('wgtest', dir));
  t.deepEqual(
    (await import('node:fs')).readdirSync(dir),
    ['wgtest.sock'],
    'the temporary bind directory is gone',
  );
  t.is((await exchange(srv.path, 'get=1\n\n')).text, 'errno=0\n\n');
  await srv.close();
  t.false(existsSync(srv.path));
});

test('several requests on one connection, pipelined in one write; a device error keeps it open', async (t) => {
  const dev = new MemoryDevice({ portsInUse: [7] });
  const srv = await start(t, dev, { dir: tmpDir(t) });
  const s = await open(srv.path);
  const r = read(s, 4);
  s.write(`set=1\nlisten_port=5\npublic_key=${K1}\nallowed_ip=10.0.0.0/8\n\nget=1\n\nset=1\nlisten_port=7\n\nget=1\n\n`);
  const { text, closed } = await r;
  t.false(closed);
  const get = `listen_port=5\npublic_key=${K1}\npreshared_key=${'0'.repeat(64)}\nprotocol_version=1\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\nallowed_ip=10.0.0.0/8\nerrno=0\n\n`;
  t.is(text, `errno=0\n\n${get}errno=-98\n\n${get}`);
  s.destroy();
});

test('a protocol error gets its errno, then the connection is closed (wireguard-go does too)', async (t) => {
  const dev = new MemoryDevice();
  const srv = await start(t, dev, { dir: tmpDir(t) });
  const cases: [string, string][] = [
    ['bogus\nget=1\n\n', 'errno=-71\n\n'],
    ['get=1\nX', 'errno=-22\n\n'],
    ['set=1\nlisten_port=1\nfoo=bar\n\nget=1\n\n', 'errno=-22\n\n'],
    ['set=1\nlisten_port\n\nget=1\n\n', 'errno=-71\n\n'],
    [`set=1\nlisten_port=${'9'.repeat(10000)}\n\nget=1\n\n`, 'errno=-5\n\n'],
  ];
  for (const [req, reply] of cases) {
    const s = await open(srv.path);
    const r = read(s, 99);
    s.write(req);
    const out = await r;
    t.is(out.text, reply, JSON.stringify(req.slice(0, 40)));
    t.true(out.closed);
  }
  t.is(dev.sets, 0, 'nothing applied');
  t.is(dev.listenPort, 0);
});

test('a set cut short by EOF applies nothing', async (t) => {
  const dev = new MemoryDevice();
  const srv = await start(t, dev, { dir: tmpDir(t) });
  const s = await open(srv.path);
  s.end(`set=1\nlisten_port=9\npublic_key=${K1}\nallowed_ip=10.0.0.0/8\n`);
  await waitClose(s);
  t.is(dev.sets, 0);
  t.is(dev.peers.size, 0);
  t.is(srv.connections, 0);
});

test('a half-closed client still gets all its replies', async (t) => {
  const srv = await start(t, new MemoryDevice(), { dir: tmpDir(t) });
  const s = await open(srv.path);
  const r = read(s, 3);
  s.end('get=1\n\nset=1\n\nget=1\n\n');
  t.is((await r).text, 'errno=0\n\nerrno=0\n\nerrno=0\n\n');
});

test('garbage never crashes the server (300 connections of random bytes and random lines)', async (t) => {
  const dev = new MemoryDevice();
  const errors: unknown[] = [];
  const srv = await start(t, dev, { dir: tmpDir(t), onError: (e) => errors.push(e) });
  const keys = ['private_key', 'listen_port', 'fwmark', 'replace_peers', 'public_key', 'remove', 'update_only', 'preshared_key', 'endpoint', 'persistent_keepalive_interval', 'replace_allowed_ips', 'allowed_ip', 'protocol_version', 'get', 'set', ''];
  const values = ['', 'true', '1', '-1', '0', K1, '0'.repeat(64), '1.2.3.4:5', '[::1]:5', '10.0.0.0/8', '-fd00::/8', '\u00ff\u0000', 'x'.repeat(5000), '99999999999999999999'];
  const pick = <T,>(a: T[]): T => a[Math.floor(Math.random() * a.length)];
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    let req: Buffer;
    if (i % 3 === 0) {
      req = randomBytes(Math.floor(Math.random() * 3000));
    } else {
      let s = pick(['set=1\n', 'get=1\n', 'set=1\n', '']);
      const n = Math.floor(Math.random() * 30);
      for (let j = 0; j < n; j++) s += Math.random() < 0.05 ? '\n' : `${pick(keys)}${Math.random() < 0.9 ? '=' : ''}${pick(values)}\n`;
      req = Buffer.from(s + (Math.random() < 0.5 ? '\n' : ''), 'latin1');
    }
    jobs.push(
      open(srv.path).then(async (s) => {
        const r = read(s, 1000);
        s.end(req);
        const out = await r;
        s.destroy();
        for (const line of out.text.split('\n')) if (line.startsWith('errno=')) t.regex(line, /^errno=(0|-(5|22|71|98))$/);
      }),
    );
  }
  await Promise.all(jobs);
  t.deepEqual(errors, []);
  const after = await exchange(srv.path, 'get=1\n\n');
  t.true(after.text.endsWith('errno=0\n\n'), 'still serving');
});

test('many connections at once: 100 clients each set a peer then read it back', async (t) => {
  const dev = new MemoryDevice();
  const srv = await start(t, dev, { dir: tmpDir(t) });
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < 100; i++) {
    const hex = i.toString(16).padStart(2, '0').repeat(32);
    jobs.push(
      exchange(srv.path, `set=1\npublic_key=${hex}\nallowed_ip=10.${i}.0.0/16\n\nget=1\n\n`, 2).then((r) => {
        t.true(r.text.startsWith('errno=0\n\n'));
        t.true(r.text.includes(`public_key=${hex}\n`));
      }),
    );
  }
  await Promise.all(jobs);
  t.is(dev.peers.size, 100);
});

test('a client that does not read its replies is not served ahead without bound', async (t) => {
  const dev = new MemoryDevice();
  let gets = 0;
  const counting: UapiDevice = { uapiGet: () => (gets++, dev.uapiGet()), uapiSet: (s) => dev.uapiSet(s) };
  const srv = await start(t, counting, { dir: tmpDir(t) });
  let body = `set=1\npublic_key=${K1}\n`;
  for (let i = 0; i < 2000; i++) body += `allowed_ip=fd00:${i.toString(16)}::/32\n`;
  t.is((await exchange(srv.path, body + '\n')).text, 'errno=0\n\n');
  const s = await open(srv.path);
  s.pause();
  s.write('get=1\n\n'.repeat(1000)); // 1000 replies of ~60 KB: 60 MB if buffered
  await new Promise((r) => setTimeout(r, 300));
  const early = gets;
  t.true(early > 0 && early < 100, `served ${early} while the client was not reading`);
  s.resume();
  const { text } = await read(s, 1000);
  t.is(gets, 1000);
  t.is(text.split('errno=0\n\n').length - 1, 1000);
  s.destroy();
});

test('a device that throws gets errno=-55 (wireguard-go IpcErrorUnknown), and serving goes on', async (t) => {
  const errors: unknown[] = [];
  const bad: UapiDevice = {
    uapiGet: () => {
      throw new Error('get broke');
    },
    uapiSet: () => {
      throw new Error('set broke');
    },
  };
  const srv = await start(t, bad, { dir: tmpDir(t), onError: (e) => errors.push(e) });
  const r = await exchange(srv.path, 'set=1\n\nget=1\n\n', 2);
  t.is(r.text, 'errno=-55\n\nerrno=-55\n\n');
  t.false(r.closed);
  t.is(errors.length, 2);
  const odd: UapiDevice = { uapiGet: () => ({ privateKey: null, listenPort: 0, fwmark: 0, peers: [] }), uapiSet: () => 22 };
  const srv2 = await start(t, odd, { dir: tmpDir(t) });
  t.is((await exchange(srv2.path, 'set=1\n\n')).text, 'errno=-22\n\n', 'a positive errno from the device is sent negative');
});

test('a stale socket file is replaced; a live one makes listen() refuse; a non-socket is left alone', async (t) => {
  const dir = tmpDir(t);
  const path = uapiSocketPath('wgtest', dir);
  // A socket file nobody listens on: bind, hard-link, close (libuv unlinks only the bound name).
  const other = createServer();
  await new Promise<void>((r) => other.listen(join(dir, 'x'), () => r()));
  linkSync(join(dir, 'x'), path);
  await new Promise<void>((r) => other.close(() => r()));
  t.true(lstatSync(path).isSocket());
  const srv = await start(t, new MemoryDevice(), { dir });
  t.is((await exchange(path, 'get=1\n\n')).text, 'errno=0\n\n');

  const e = await t.throwsAsync(UapiServer.listen('wgtest', new MemoryDevice(), { dir }));
  t.is((e as NodeJS.ErrnoException).code, 'EADDRINUSE');
  t.is((await exchange(path, 'get=1\n\n')).text, 'errno=0\n\n', 'the live one still serves');
  await srv.close();

  writeFileSync(path, 'not a socket');
  const e2 = await t.throwsAsync(UapiServer.listen('wgtest', new MemoryDevice(), { dir }));
  t.is((e2 as NodeJS.ErrnoException).code, 'EEXIST');
  t.is(readFileSync(path, 'utf8'), 'not a socket');
  t.deepEqual((await import('node:fs')).readdirSync(dir).sort(), ['wgtest.sock'], 'no temporary directory left behind');
});

test('deleting the socket file is noticed; so is replacing it, and close() leaves the replacement', async (t) => {
  const dir = tmpDir(t);
  let deleted = 0;
  const srv = await start(t, new MemoryDevice(), { dir, onSocketDeleted: () => deleted++ });
  const t0 = performance.now();
  rmSync(srv.path);
  while (deleted === 0 && performance.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
  t.is(deleted, 1);
  t.log(`deletion noticed after ${(performance.now() - t0).toFixed(0)} ms`);
  await srv.close();

  // Replaced by another file: the name now leads to another inode.
  let replaced = 0;
  const srv2 = await start(t, new MemoryDevice(), { dir, watchIntervalMs: 50, onSocketDeleted: () => replaced++ }, 'wgtest2');
  writeFileSync(join(dir, 'other'), 'x');
  renameSync(join(dir, 'other'), srv2.path);
  const t1 = performance.now();
  while (replaced === 0 && performance.now() - t1 < 3000) await new Promise((r) => setTimeout(r, 10));
  t.is(replaced, 1);
  await srv2.close();
  t.is(readFileSync(srv2.path, 'utf8'), 'x', 'close() does not unlink what is no longer ours');
});

test('close() drops open connections and stops accepting', async (t) => {
  const srv = await start(t, new MemoryDevice(), { dir: tmpDir(t) });
  const s = await open(srv.path);
  s.on('error', () => {});
  s.write('get=1\n'); // mid-request
  await new Promise((r) => setTimeout(r, 20));
  t.is(srv.connections, 1);
  await srv.close();
  await waitClose(s);
  await t.throwsAsync(open(srv.path));
});

test('interface names: as Linux allows them', async (t) => {
  for (const ok of ['wg0', 'a', 'x'.repeat(15), 'wg-quick_1.2']) t.true(isValidInterfaceName(ok), ok);
  for (const bad of ['', '.', '..', 'x'.repeat(16), 'a/b', 'a:b', 'a b', 'a\nb', 'é'.repeat(8)]) t.false(isValidInterfaceName(bad), bad);
  const e = await t.throwsAsync(UapiServer.listen('../evil', new MemoryDevice(), { dir: tmpDir(t) }));
  t.is((e as NodeJS.ErrnoException).code, 'EINVAL');
});
