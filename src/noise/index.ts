// src/noise: the WireGuard protocol as a sans-IO core (bytes in; bytes and verdicts out).
export * from './constants.ts';
export type { Aead, AeadKey, Blake2s, CryptoBackend, PrivateKey, PublicKey, X25519, XAead } from './crypto.ts';
export { chosenBackend, jsBackend, nodeBackend, wasmBackend, hchacha20 } from './crypto.ts';
export { AeadBatch, WasmAeadKey, wasmAead, wasmAeadSupported, MAX_PLAINTEXT, MAX_SEALED, RECORD_SIZE, RECORD_WORDS } from './aead-batch.ts';
export type { AeadBatchOptions } from './aead-batch.ts';
export { AeadPool, DEFAULT_WORKERS, INLINE_MAX, MAX_WORKERS, OP_OPEN, OP_SEAL, parseWorkers } from './aead-pool.ts';
export { Symmetric, initialChainingKeyAndHash } from './symmetric.ts';
export { StaticIdentity, generatePrivateKeyBytes, keyToBase64, keyToHex, labelKey, parseKeyBase64, parseKeyHex } from './keys.ts';
export { readTai64nMs, tai64nAfter, writeTai64n } from './tai64n.ts';
export { ReplayWindow } from './replay.ts';
export {
  CookieChecker,
  CookieGenerator,
  mac1Offset,
  VERDICT_ACCEPT,
  VERDICT_ACCEPT_RATE_LIMITED,
  VERDICT_DROP,
  VERDICT_SEND_COOKIE,
} from './cookie.ts';
export type { Verdict } from './cookie.ts';
export {
  Handshake,
  consumeInitiation,
  HANDSHAKE_INITIATION_CONSUMED,
  HANDSHAKE_INITIATION_CREATED,
  HANDSHAKE_RESPONSE_CONSUMED,
  HANDSHAKE_RESPONSE_CREATED,
  HANDSHAKE_ZEROED,
} from './handshake.ts';
export type { ConsumeInitiationResult, ConsumeResponseResult, HandshakeError, HandshakeState } from './handshake.ts';
export {
  Keypair,
  paddedLength,
  transportReceiver,
  OPEN_ERR_AUTH,
  OPEN_ERR_INDEX,
  OPEN_ERR_REPLAY,
  OPEN_ERR_SIZE,
  OPEN_ERR_TYPE,
  SEAL_ERR_EXHAUSTED,
  SEAL_ERR_SPACE,
} from './transport.ts';
export { equalConstantTime, isZero, readType, readU32LE, wipe, writeU32LE } from './util.ts';
