// UAPI constants: reply codes and the limits that keep a hostile client from exhausting memory.
import { constants } from 'node:os';

const errno = constants.errno as Record<string, number | undefined>;

// Reply codes, negative as on the wire (`errno=-22`). wireguard-go ipc/uapi_unix.go uses the
// same five; wg prints strerror(-N) and exits 1 on any of them.
export const UAPI_EIO = -(errno.EIO ?? 5); // reading the request failed (wireguard-go: a line too long for its scanner)
export const UAPI_EPROTO = -(errno.EPROTO ?? 71); // a line without "=", an unknown operation
export const UAPI_EINVAL = -(errno.EINVAL ?? 22); // an unknown key, or a bad value for a known one
export const UAPI_EADDRINUSE = -(errno.EADDRINUSE ?? 98); // for the device: the listen port is taken
export const UAPI_ENOANO = -55; // wireguard-go's IpcErrorUnknown: anything else (here: the device threw)
export const UAPI_E2BIG = -(errno.E2BIG ?? 7); // a set request with more lines than UAPI_MAX_SET_LINES (ours)

export const UAPI_SOCKET_DIR = '/var/run/wireguard';
export const UAPI_SOCKET_SUFFIX = '.sock';

/** Longest line accepted. The longest line `wg` writes is an endpoint (~60 bytes). */
export const UAPI_MAX_LINE_BYTES = 4096;
/**
 * Most lines in one set request: 4 × the 130,560-prefix `setconf` of wireguard-go's netns.sh.
 * A parsed prefix costs ~150 bytes of heap, so this caps one request near 80 MB.
 */
export const UAPI_MAX_SET_LINES = 1 << 19;

export const KEY_LEN = 32;
export const KEY_HEX_LEN = 64;
