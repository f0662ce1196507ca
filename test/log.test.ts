// src/log.ts: the one logger of both programs.
import test from 'ava';
import { createLogger, parseLogLevel } from '../src/log.ts';

function capture(opts: { level?: string; pretty?: boolean } = {}) {
  const lines: string[] = [];
  const log = createLogger('sixpn', { name: 'sixpn[h1]', defaultLevel: 'info', write: (l) => void lines.push(l), ...opts });
  return { log, lines };
}

test('JSON lines: level, time, name, the bound object and the message', (t) => {
  const { log, lines } = capture({ pretty: false });
  log.child({ machine: 'm1', org: 'acme' }).error('TUN gone', { errno: 19 });
  t.is(lines.length, 1);
  t.true(lines[0].endsWith('\n'));
  const rec = JSON.parse(lines[0]) as Record<string, unknown>;
  t.like(rec, { level: 'error', name: 'sixpn[h1]', machine: 'm1', org: 'acme', errno: 19, msg: 'TUN gone' });
  t.regex(String(rec.time), /^\d{4}-\d\d-\d\dT/);
});

test('readable lines on a terminal', (t) => {
  const { log, lines } = capture({ pretty: true });
  log.child({ peer: 'laptop' }).info('handshake');
  t.regex(lines[0], /^\S+ INFO sixpn\[h1\] peer=laptop: handshake\n$/);
});

test('LOG_LEVEL: debug (or verbose), info, error, silent; unknown values keep the default', (t) => {
  t.is(parseLogLevel('verbose', 'info'), 'debug');
  t.is(parseLogLevel('nonsense', 'error'), 'error');
  t.is(parseLogLevel(undefined, 'info'), 'info');
  for (const [level, want] of [['debug', 3], ['info', 2], ['error', 1], ['silent', 0]] as const) {
    const { log, lines } = capture({ level, pretty: false });
    log.debug('d');
    log.info('i');
    log.error('e');
    t.is(lines.length, want, level);
  }
});

test('key fields are never written', (t) => {
  const { log, lines } = capture({ pretty: false });
  log.error('config', { privateKey: 'c2VjcmV0', presharedKey: 'c2VjcmV0' });
  t.false(lines[0].includes('c2VjcmV0'));
  t.true(lines[0].includes('[redacted]'));
});
