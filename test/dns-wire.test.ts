// The DNS codec pieces: name reading with compression safety, the writer, TXT splitting,
// IPv6 text, region distances, TCP framing.
import test from 'ava';
import {
  MessageWriter, QUERY_DROP, QUERY_FORMERR, QUERY_NOTIMP, QUERY_OK, newParsedQuery, parseQuery, readName,
} from '../src/dns/wire.ts';
import { REGION_COORDS, TcpDeframer, greatCircleKm, regionDistanceKm } from '../src/dns/index.ts';

const bytes = (...parts: (number | string)[]) =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : Array.from(p, (c) => c.charCodeAt(0)))));

test('readName: plain, compressed backward, and the offset after the name', (t) => {
  // 0: 3abc 7example 0   13: 1x 0xc0 0x00 (x.abc.example)
  const b = bytes(3, 'abc', 7, 'example', 0, 1, 'x', 0xc0, 0);
  const l1: string[] = [];
  t.is(readName(b, 0, b.length, l1), 13);
  t.deepEqual(l1, ['abc', 'example']);
  const l2: string[] = [];
  t.is(readName(b, 13, b.length, l2), 17);
  t.deepEqual(l2, ['x', 'abc', 'example']);
  const l3: string[] = [];
  t.is(readName(b, 15, b.length, l3), 17); // a bare pointer
  t.deepEqual(l3, ['abc', 'example']);
});

test('readName: loops, forward and self pointers, reads past the end, reserved label types', (t) => {
  t.is(readName(bytes(0xc0, 0), 0, 2), -1); // points at itself
  t.is(readName(bytes(1, 'a', 0xc0, 0), 0, 4), -1); // back into its own run: a loop
  t.is(readName(bytes(0xc0, 2, 0), 0, 3), -1); // forward
  t.is(readName(bytes(1, 'a', 0, 1, 'b', 0xc0, 3), 3, 7), -1); // back to a pointer to itself: loop of two
  t.is(readName(bytes(3, 'ab'), 0, 3), -1); // label past the end
  t.is(readName(bytes(1, 'a'), 0, 2), -1); // no terminator
  t.is(readName(bytes(0xc0), 0, 1), -1); // half a pointer
  t.is(readName(bytes(0x41, 'a', 0), 0, 3), -1); // 0x40 label type
  t.is(readName(bytes(0x81, 'a', 0), 0, 3), -1); // 0x80 label type
  t.is(readName(bytes(3, 'abc', 0), 0, 4), -1); // `end` is respected even inside the buffer
});

test('readName: names longer than 255 bytes are rejected, also when built from pointers', (t) => {
  const label = (n: number) => [n, 'a'.repeat(n)];
  t.not(readName(bytes(...label(63), ...label(63), ...label(63), ...label(61), 0), 0, 255), -1); // 255 exactly
  t.is(readName(bytes(...label(63), ...label(63), ...label(63), ...label(62), 0), 0, 256), -1);
  // 128 + 128 + 1 via a pointer: each part fine, the whole too long.
  const b = bytes(...label(63), ...label(63), 0, ...label(63), ...label(63), 0xc0, 0);
  t.is(readName(b, 129, b.length), -1);
});

test('parseQuery: the header decides first', (t) => {
  const p = newParsedQuery();
  const q = bytes(0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 28, 0, 1);
  t.is(parseQuery(q, q.length, p), QUERY_OK);
  t.deepEqual(p.question.labels, ['a']);
  t.is(p.question.qtype, 28);
  t.is(p.question.end, q.length);
  t.is(parseQuery(q, 11, p), QUERY_DROP);
  const resp = q.slice(); resp[2] |= 0x80;
  t.is(parseQuery(resp, resp.length, p), QUERY_DROP);
  const update = q.slice(); update[2] = 5 << 3;
  t.is(parseQuery(update, update.length, p), QUERY_NOTIMP);
  const ar3 = q.slice(); ar3[11] = 3;
  t.is(parseQuery(ar3, ar3.length, p), QUERY_DROP);
  t.is(parseQuery(q, q.length - 1, p), QUERY_FORMERR);
  const ptr = bytes(0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 4, 0, 28, 0, 1); // pointer into the header
  t.is(parseQuery(ptr, ptr.length, p), QUERY_FORMERR);
});

test('parseQuery: OPT payload floor, version, DO; malformed options', (t) => {
  const p = newParsedQuery();
  const withOpt = (cls: number, ver: number, rdata: number[], owner: number[] = [0]) =>
    bytes(0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, ...owner, 0, 41, cls >> 8, cls & 255, 0, ver, 0x80, 0, 0, rdata.length, ...rdata);
  t.is(parseQuery(withOpt(4096, 0, []), 100, p), QUERY_OK);
  t.deepEqual([p.edns.present, p.edns.payload, p.edns.version, p.edns.flags], [true, 4096, 0, 0x8000]);
  t.is(parseQuery(withOpt(100, 1, [0, 10, 0, 2, 1, 2]), 100, p), QUERY_OK); // cookie-like option
  t.deepEqual([p.edns.payload, p.edns.version], [512, 1]);
  t.is(parseQuery(withOpt(1232, 0, [0, 10, 0, 9, 1]), 100, p), QUERY_FORMERR); // option overruns
  const notRoot = withOpt(1232, 0, [], [1, 97, 0]); // OPT owned by `a.`, not the root
  t.is(parseQuery(notRoot, notRoot.length, p), QUERY_FORMERR);
  t.is(parseQuery(withOpt(1232, 0, []), 100, p), QUERY_OK);
});

test('MessageWriter: compresses suffixes, respects the limit, rolls back names', (t) => {
  const w = new MessageWriter();
  const buf = new Uint8Array(64);
  w.reset(buf, 64);
  w.name(['www', 'Example', 'com'], ['www', 'example', 'com']);
  t.is(w.pos, 17);
  w.name(['mail', 'EXAMPLE', 'COM'], ['mail', 'example', 'com']);
  t.deepEqual(Array.from(buf.subarray(17, w.pos)), [4, 109, 97, 105, 108, 0xc0, 4]);
  const mark = w.pos;
  w.name(['new', 'org'], ['new', 'org']);
  w.rollback(mark);
  w.name(['x', 'org'], ['x', 'org']); // must not point at the rolled-back `org`
  t.deepEqual(Array.from(buf.subarray(mark, w.pos)), [1, 120, 3, 111, 114, 103, 0]);
  w.bytes(new Uint8Array(64));
  t.true(w.overflow);
  t.true(w.pos <= 64);
});

test('MessageWriter.txt: 255-byte character-strings in one record', (t) => {
  const w = new MessageWriter();
  const buf = new Uint8Array(2000);
  for (const [len, strings] of [[0, [0]], [255, [255]], [256, [255, 1]], [600, [255, 255, 90]]] as const) {
    w.reset(buf, buf.length);
    w.txt(12, 5, new Uint8Array(len).fill(0x61));
    const rdlen = (buf[10] << 8) | buf[11];
    t.is(rdlen, len + strings.length);
    const got: number[] = [];
    for (let p = 12; p < 12 + rdlen; p += 1 + buf[p]) got.push(buf[p]);
    t.deepEqual(got, [...strings]);
  }
});

test('great-circle distances between region cities', (t) => {
  const km = (a: string, b: string) => regionDistanceKm(a, b);
  t.true(Math.abs(km('lhr', 'cdg') - 344) < 10);
  t.true(Math.abs(km('iad', 'lhr') - 5900) < 100);
  t.true(Math.abs(km('syd', 'lax') - 12050) < 100);
  t.is(km('iad', 'iad'), 0);
  t.is(km('iad', 'xyz'), Infinity);
  t.is(km('xyz', 'xyz'), 0);
  t.true(Math.abs(greatCircleKm([0, 0], [0, 180]) - Math.PI * 6371) < 1);
  t.true([...REGION_COORDS.keys()].every((k) => /^[a-z]{3}$/.test(k)));
});

test('TcpDeframer: byte-at-a-time, length split across chunks, views stay until the next push', (t) => {
  const msg = bytes(0, 14, ...new Array(14).fill(7));
  const d = new TcpDeframer();
  for (let i = 0; i < msg.length; i++) {
    t.is(d.next(), undefined);
    t.true(d.push(msg.subarray(i, i + 1)));
  }
  const m = d.next()!;
  t.is(m.length, 14);
  t.true(m.every((v) => v === 7));
  t.is(d.next(), undefined);
  t.true(d.push(bytes(0)));
  t.false(d.push(bytes(3))); // length 3 < header
  t.true(d.broken);
});
