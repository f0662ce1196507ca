// WireGuard protocol constants (whitepaper §5.4 and §6; wireguard-go device/constants.go).

// ---- Specification constants: message types and wire sizes (whitepaper §5.4) ----
export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

export const MESSAGE_INITIATION_SIZE = 148; // size of handshake initiation message
export const MESSAGE_RESPONSE_SIZE = 92; // size of response message
export const MESSAGE_COOKIE_REPLY_SIZE = 64; // size of cookie reply message
export const MESSAGE_TRANSPORT_HEADER_SIZE = 16; // type, receiver, counter
export const MESSAGE_TRANSPORT_SIZE = 32; // minimal transport message: header + tag (keepalive)
export const MESSAGE_KEEPALIVE_SIZE = MESSAGE_TRANSPORT_SIZE;

export const KEY_SIZE = 32; // X25519 keys, chaining key, hash
export const MAC_SIZE = 16; // mac1, mac2, cookie
export const TAG_SIZE = 16; // Poly1305 tag
export const TIMESTAMP_SIZE = 12; // TAI64N
export const COOKIE_NONCE_SIZE = 24; // XChaCha20 nonce
export const PADDING_MULTIPLE = 16; // transport plaintext is padded to a multiple of this

// Offsets in the initiation (type 1).
export const INIT_OFF_SENDER = 4;
export const INIT_OFF_EPHEMERAL = 8;
export const INIT_OFF_STATIC = 40; // encrypted static: 32 + 16
export const INIT_OFF_TIMESTAMP = 88; // encrypted timestamp: 12 + 16
export const INIT_OFF_MAC1 = 116;
export const INIT_OFF_MAC2 = 132;

// Offsets in the response (type 2).
export const RESP_OFF_SENDER = 4;
export const RESP_OFF_RECEIVER = 8;
export const RESP_OFF_EPHEMERAL = 12;
export const RESP_OFF_EMPTY = 44; // encrypted nothing: 0 + 16
export const RESP_OFF_MAC1 = 60;
export const RESP_OFF_MAC2 = 76;

// Offsets in the cookie reply (type 3).
export const COOKIE_OFF_RECEIVER = 4;
export const COOKIE_OFF_NONCE = 8;
export const COOKIE_OFF_COOKIE = 32; // encrypted cookie: 16 + 16

// Offsets in the transport message (type 4).
export const TRANSPORT_OFF_RECEIVER = 4;
export const TRANSPORT_OFF_COUNTER = 8;
export const TRANSPORT_OFF_DATA = 16;

// ---- Specification constants: Noise names (whitepaper §5.4) ----
export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';

// ---- Specification constants: timers and limits (whitepaper §6.1) ----
export const REKEY_AFTER_MESSAGES = 2 ** 60;
// REJECT_AFTER_MESSAGES = 2^64 - 2^13 - 1, kept as its two 32-bit halves (exceeds 2^53).
export const REJECT_AFTER_MESSAGES_HI = 0xffffffff;
export const REJECT_AFTER_MESSAGES_LO = 0xffffdfff;
export const REKEY_AFTER_TIME_MS = 120_000;
export const REJECT_AFTER_TIME_MS = 180_000;
export const REKEY_ATTEMPT_TIME_MS = 90_000;
export const REKEY_TIMEOUT_MS = 5_000;
export const REKEY_TIMEOUT_JITTER_MAX_MS = 333;
export const KEEPALIVE_TIMEOUT_MS = 10_000;
export const COOKIE_REFRESH_TIME_MS = 120_000;
export const MAX_HANDSHAKE_ATTEMPTS = REKEY_ATTEMPT_TIME_MS / REKEY_TIMEOUT_MS; // 18

// ---- Implementation constants ----
// A peer's initiations closer together than this are dropped as a flood (wireguard-go).
export const HANDSHAKE_INITIATION_RATE_MS = 20;
// TAI64N nanoseconds are rounded down to a multiple of 2^24 ns so the timestamp does not
// leak fine-grained clock information (wireguard-go tai64n whitening).
export const TAI64N_WHITENER_MASK = 0x1000000 - 1;
// Sliding replay window (RFC 6479): a ring of 256 32-bit words; the window is the ring less
// one word, so 8160 messages behind the newest counter are still accepted once.
export const REPLAY_RING_WORDS = 256;
export const REPLAY_WINDOW_SIZE = (REPLAY_RING_WORDS - 1) * 32; // 8160
