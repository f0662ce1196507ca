// The cookie path (whitepaper §5.3): an initiation under load without mac2 gets a cookie reply;
// the initiator consumes it and its next initiation carries a valid mac2.
import test from 'ava';
import {
  COOKIE_REFRESH_TIME_MS,
  MESSAGE_COOKIE_REPLY_SIZE,
  VERDICT_ACCEPT,
  VERDICT_ACCEPT_RATE_LIMITED,
  VERDICT_DROP,
  VERDICT_SEND_COOKIE,
  consumeInitiation,
  isZero,
  jsBackend,
  lookupFor,
  makePair,
  nodeBackend,
  readU32LE,
} from './helpers/noise.ts';

const SRC = new Uint8Array([0xfd, 0, 0xb1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x6c, 0xca]);
const OTHER_SRC = new Uint8Array([0xfd, 0, 0xb1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x6c, 0xca]);

for (const [ba, bb] of [[nodeBackend, jsBackend], [jsBackend, nodeBackend]] as const) {
  test(`under load: cookie reply, then a valid mac2 (${ba.name} initiator, ${bb.name} responder)`, (t) => {
    const { a, b } = makePair(ba, bb);
    let now = 50_000;
    const init = new Uint8Array(148);
    a.peer.createInitiation(0xabcdef, Date.now(), init);
    a.peer.cookies.addMacs(init, 148, now);
    t.true(isZero(init, 132, 16), 'no cookie yet: mac2 is zero');

    t.is(b.checker.validate(init, 148, SRC, false, now), VERDICT_ACCEPT, 'not under load: accepted on mac1');
    t.is(b.checker.validate(init, 148, SRC, true, now), VERDICT_SEND_COOKIE);
    const reply = new Uint8Array(MESSAGE_COOKIE_REPLY_SIZE);
    t.is(b.checker.createReply(init, 148, SRC, now, reply), MESSAGE_COOKIE_REPLY_SIZE);
    t.is(reply[0], 3);
    t.is(readU32LE(reply, 4), 0xabcdef, 'addressed to the initiation\'s sender index');

    // every byte flipped: the reply does not decrypt (the receiver index is checked by the
    // caller's index lookup, modelled here)
    for (let i = 0; i < reply.length; i++) {
      const m = Uint8Array.from(reply);
      m[i] ^= 0x10;
      const routed = readU32LE(m, 4) === 0xabcdef;
      t.false(routed && a.peer.cookies.consumeReply(m, m.length, now), `byte ${i}`);
    }
    t.false(a.peer.cookies.consumeReply(reply, 63, now), 'truncated');
    t.false(a.peer.cookies.hasCookie(now));
    t.true(a.peer.cookies.consumeReply(reply, 64, now));
    t.true(a.peer.cookies.hasCookie(now));

    now += 1000;
    const next = new Uint8Array(148);
    a.peer.createInitiation(0xabcdef, Date.now() + 1000, next);
    a.peer.cookies.addMacs(next, 148, now);
    t.false(isZero(next, 132, 16), 'mac2 carries the cookie');
    t.true(b.checker.checkMac2(next, 148, SRC, now));
    t.false(b.checker.checkMac2(next, 148, OTHER_SRC, now), 'the cookie is bound to the source address and port');
    t.is(b.checker.validate(next, 148, SRC, true, now), VERDICT_ACCEPT_RATE_LIMITED);
    t.true(consumeInitiation(b.identity, next, 148, lookupFor(b), now).ok);

    // a cookie reply answers one message: after a newer message was sent, the old reply fails
    t.false(a.peer.cookies.consumeReply(reply, 64, now), 'AAD is the mac1 of the message it answers');
  });
}

test('cookies expire after COOKIE_REFRESH_TIME on both sides', (t) => {
  const { a, b } = makePair(nodeBackend);
  let now = 0;
  const init = new Uint8Array(148);
  a.peer.createInitiation(1, Date.now(), init);
  a.peer.cookies.addMacs(init, 148, now);
  const reply = new Uint8Array(64);
  b.checker.createReply(init, 148, SRC, now, reply);
  t.true(a.peer.cookies.consumeReply(reply, 64, now));

  // the initiator stops using a cookie older than 120 s
  now = COOKIE_REFRESH_TIME_MS + 1;
  a.peer.cookies.addMacs(init, 148, now);
  t.true(isZero(init, 132, 16));
  t.is(b.checker.validate(init, 148, SRC, true, now), VERDICT_SEND_COOKIE);

  // the responder's secret rotates: a cookie made under the old secret no longer validates
  now = 1000;
  a.peer.cookies.addMacs(init, 148, now); // fresh cookie (set at 0): valid mac2
  t.true(b.checker.checkMac2(init, 148, SRC, now));
  now = COOKIE_REFRESH_TIME_MS + 10;
  t.false(b.checker.checkMac2(init, 148, SRC, now), 'secret older than 120 s: no mac2 is valid');
  const reply2 = new Uint8Array(64);
  b.checker.createReply(init, 148, SRC, now, reply2); // rotates the secret
  t.false(b.checker.checkMac2(init, 148, SRC, now), 'old cookie under the new secret');
  t.true(a.peer.cookies.consumeReply(reply2, 64, now));
  a.peer.cookies.addMacs(init, 148, now);
  t.true(b.checker.checkMac2(init, 148, SRC, now));
});

test('messages with a bad mac1 are dropped before any other work, loaded or not', (t) => {
  const { a, b } = makePair(nodeBackend);
  const init = new Uint8Array(148);
  a.peer.createInitiation(1, Date.now(), init);
  // no macs added at all
  t.is(b.checker.validate(init, 148, SRC, false, 0), VERDICT_DROP);
  t.is(b.checker.validate(init, 148, SRC, true, 0), VERDICT_DROP);
  t.is(b.checker.createReply(init, 147, SRC, 0, new Uint8Array(64)), 0, 'no reply to a malformed message');
});
