// `sixpn service allocate|list|release` (issue 13) as a user runs it, against a topology file
// (the example): the lowest free <org /48>:0:1::N of the app's org or of --org's, the ports and
// autostart written, refusals naming the rule, and the result valid for every host.
import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTopology } from '../src/topology/index.ts';
import { SIXPN } from './helpers/netns.ts';

const EXAMPLE = fileURLToPath(new URL('../examples/topology.example.json', import.meta.url));
const env = { ...process.env, SIXPN_NODE: process.execPath };
const dir = mkdtempSync(join(tmpdir(), 'sixpn-svc-'));
const file = join(dir, 'topology.json');
copyFileSync(EXAMPLE, file);
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function sixpn(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(SIXPN, [...args, '-t', file], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

test.serial('allocate in the app\'s own org, then in another org\'s /48; list; release', async (t) => {
  // the example has fdaa:0:18:0:1::3 and ::4 in acme's /48 already: the lowest free N is 1
  let r = await sixpn('service', 'allocate', 'shop-db', '--port', '5432/tcp', '--autostart', '--json');
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { app: 'shop-db', address: 'fdaa:0:18:0:1::1', org: 'acme', ports: ['5432/tcp'], autostart: true });
  r = await sixpn('service', 'allocate', 'shop-web', '--org', 'initech', '--port', '80/tcp', '--port', '53/udp');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /service fdaa:0:863:0:1::1 allocated to app shop-web in org initech's network \(shop-web\.sixpn\): 80\/tcp 53\/udp/);
  const topo = parseTopology(readFileSync(file, 'utf8'), file);
  t.deepEqual(topo.servicesForOrg('initech').map((s) => [s.app, s.addressText]), [['shop-web', 'fdaa:0:863:0:1::1']]);
  r = await sixpn('service', 'list');
  t.regex(r.stdout, /^fdaa:0:18:0:1::1 +shop-db +acme +5432\/tcp +true/m);
  r = await sixpn('service', 'release', 'fdaa:0:863:0:1:0:0:1');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /service fdaa:0:863:0:1:0:0:1 of app shop-web released/);
  t.deepEqual(parseTopology(readFileSync(file, 'utf8'), file).servicesForOrg('initech'), []);
});

test.serial('refusals name the object and the rule', async (t) => {
  let r = await sixpn('service', 'allocate', 'nope', '--port', '80/tcp');
  t.is(r.code, 1);
  t.regex(r.stderr, /service of app "nope": app "nope" does not exist/);
  r = await sixpn('service', 'allocate', 'shop-web');
  t.regex(r.stderr, /no ports/);
  r = await sixpn('service', 'allocate', 'shop-web', '--port', '80/sctp');
  t.is(r.code, 1);
  t.regex(r.stderr, /ports: "80\/sctp" is not "PORT\/tcp" or "PORT\/udp"/);
  r = await sixpn('service', 'release', 'fdaa:0:18:0:1::99');
  t.regex(r.stderr, /no app has this service address/);
});
