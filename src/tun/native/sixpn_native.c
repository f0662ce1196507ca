/*
 * sixpn_native.c — the only native code in sixpn (Linux, N-API, C11).
 *
 * It exists because Node.js has no ioctl(), no poll() on an arbitrary fd, no recvmmsg()/
 * sendmmsg(), and node:dgram exposes neither IP_PKTINFO/IPV6_PKTINFO nor SO_RCVBUFFORCE.
 * Everything else (protocol logic, crypto, interface and namespace setup) is TypeScript.
 *
 *   tunOpen(name, multiQueue, vnetHdr)   open("/dev/net/tun") + ioctl(TUNSETIFF) → {fd, name}
 *   tunSetOffload(fd, flags)             ioctl(TUNSETOFFLOAD)
 *   tunRead(fd, slab, meta, max, ms)     poll() then read() until EAGAIN → count
 *   tunWrite(fd, slab, meta, count, ms)  write() per packet → records processed
 *   udpOpen(family, addr, port, …)       socket() + setsockopt() + bind() → {fd, port, …}
 *   udpRecv(fd, slab, meta, max, ms)     poll() then recvmmsg() → count
 *   udpSend(fd, slab, meta, count, ms)   sendmmsg() with per-packet IP(V6)_PKTINFO → processed
 *   udpSetMark(fd, mark)                 setsockopt(SO_MARK): wg's fwmark, for policy routing
 *   udpSetGro(fd, on)                    setsockopt(UDP_GRO): coalesced receives (see UDP_META_GSO)
 *   ifIndex(name)                        if_nametoindex()
 *   close(fd)                            close()
 *   fdWatch(fd, callback)                uv_poll_start(UV_READABLE) on this thread's loop → handle
 *   fdUnwatch(handle)                    uv_poll_stop() + uv_close()
 *
 * Memory: JS owns all of it. Packets live in a caller's slab (any TypedArray, DataView or
 * ArrayBuffer; a SharedArrayBuffer through a view) and are described by records in a caller's
 * Int32Array ("meta"). Native code never allocates per call or per packet: the only scratch
 * space is a fixed array of msghdrs on the stack. Calls return counts.
 *
 * Record layout (int32 words; the same numbers are exported to JS, which never repeats them):
 *
 *   word  name            TUN (4 words)            UDP (16 words)
 *   0     META_OFF        in: slab byte offset     in: slab byte offset
 *   1     META_CAP        in: read capacity        in: recv capacity
 *   2     META_LEN        out (read) / in (write)  out (recv) / in (send)
 *   3     META_ERR        out: 0 or errno          out: 0 or errno
 *   4     UDP_META_FAMILY                          peer family 4 or 6 (out on recv, in on send)
 *   5     UDP_META_PORT                            peer port, host order
 *   6-9   UDP_META_ADDR                            peer address, 16 bytes; IPv4 as ::ffff:a.b.c.d
 *   10-13 UDP_META_LOCAL                           our address the packet came to (recv) / the
 *                                                  source to send from (send; :: = kernel picks)
 *   14    UDP_META_IFINDEX                         arrival interface (recv) / outgoing interface
 *                                                  (send; 0 = routing decides)
 *   15    UDP_META_GSO                             segment size: on send, > 0 sends LEN bytes as
 *                                                  datagrams of GSO bytes (UDP_SEGMENT, the last
 *                                                  may be shorter); on recv, > 0 when the kernel
 *                                                  coalesced datagrams of GSO bytes (UDP_GRO)
 *
 * A received UDP record is a ready reply record: udpSend() on it sends to the peer from the
 * address and interface the packet arrived on.
 *
 * Blocking: every fd is opened O_NONBLOCK. A call first tries the syscall; only if nothing is
 * ready and timeoutMs != 0 does it poll() for up to timeoutMs (-1 = forever), then drains.
 * So a worker thread can block in native code and still notice a stop flag between calls,
 * and the main thread can call with timeoutMs = 0 without ever blocking.
 *
 * Errors: fd-level failures throw an Error shaped like Node's system errors (code "EBADF",
 * errno -9, syscall). Per-packet failures (EMSGSIZE, EINVAL, EIO, ENETUNREACH, …) go into
 * META_ERR of that record and the batch continues. A malformed record (offset/length outside
 * the slab) throws a RangeError before any I/O is done.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <netinet/udp.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include <node_api.h>
#include <uv.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* Linux >= 4.18 */
#endif
#ifndef UDP_GRO
#define UDP_GRO 104 /* Linux >= 5.0 */
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20 /* Linux >= 6.2 */
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

/* Record layout (see the table above). */
enum {
    META_OFF = 0,
    META_CAP = 1,
    META_LEN = 2,
    META_ERR = 3,
    TUN_RECORD_WORDS = 4,
    UDP_META_FAMILY = 4,
    UDP_META_PORT = 5,
    UDP_META_ADDR = 6,
    UDP_META_LOCAL = 10,
    UDP_META_IFINDEX = 14,
    UDP_META_GSO = 15,
    UDP_RECORD_WORDS = 16,
};

/* Messages per recvmmsg()/sendmmsg() call; larger batches are split into chunks of this. */
enum { UDP_CHUNK = 64 };

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

/* Throws an Error like Node's own system errors: code "EXXX", errno -e, syscall. */
static void throw_errno(napi_env env, int e, const char *syscall, const char *subject)
{
    const char *name = strerrorname_np(e);
    char msg[192];
    napi_value code, message, err, v;

    if (name == NULL)
        name = "EUNKNOWN";
    snprintf(msg, sizeof msg, "%s%s%s: %s (%s)", syscall, subject ? " " : "", subject ? subject : "",
             strerror(e), name);
    if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok ||
        napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
        napi_create_error(env, code, message, &err) != napi_ok) {
        napi_throw_error(env, name, msg);
        return;
    }
    if (napi_create_int32(env, -e, &v) == napi_ok)
        napi_set_named_property(env, err, "errno", v);
    if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
        napi_set_named_property(env, err, "syscall", v);
    napi_throw(env, err);
}

/* Errors that are about the fd, not one packet: throw instead of filling every record. */
static bool is_fd_error(int e)
{
    return e == EBADF || e == EBADFD || e == ENOTSOCK || e == EFAULT || e == ENOTCONN;
}

/* ------------------------------------------------------------------------------------------ */
/* Arguments                                                                                   */

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv)
{
    size_t argc = want;

    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
        return false;
    if (argc < want) {
        char msg[64];
        snprintf(msg, sizeof msg, "expected %zu arguments, got %zu", want, argc);
        napi_throw_type_error(env, "ERR_MISSING_ARGS", msg);
        return false;
    }
    return true;
}

static bool get_i32(napi_env env, napi_value v, const char *what, int32_t *out)
{
    napi_valuetype t;

    if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be a number", what);
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
        return false;
    }
    return napi_get_value_int32(env, v, out) == napi_ok;
}

static bool get_bool(napi_env env, napi_value v, bool *out)
{
    napi_valuetype t;

    if (napi_typeof(env, v, &t) != napi_ok)
        return false;
    if (t == napi_undefined || t == napi_null) {
        *out = false;
        return true;
    }
    if (t != napi_boolean) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "flag must be a boolean");
        return false;
    }
    return napi_get_value_bool(env, v, out) == napi_ok;
}

/* Copies a JS string into buf (size cap, NUL-terminated); fails if it does not fit. */
static bool get_str(napi_env env, napi_value v, const char *what, char *buf, size_t cap)
{
    size_t len = 0;
    char msg[96];

    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
        snprintf(msg, sizeof msg, "%s must be a string", what);
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
        return false;
    }
    if (len >= cap) {
        snprintf(msg, sizeof msg, "%s is longer than %zu bytes", what, cap - 1);
        napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
        return false;
    }
    return napi_get_value_string_utf8(env, v, buf, cap, &len) == napi_ok;
}

static size_t typedarray_elem_size(napi_typedarray_type t)
{
    switch (t) {
    case napi_int16_array:
    case napi_uint16_array:
        return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
        return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
        return 8;
    default:
        return 1;
    }
}

/* The slab: the bytes behind a TypedArray (Buffer included), DataView or ArrayBuffer. */
static bool get_slab(napi_env env, napi_value v, uint8_t **data, size_t *len)
{
    bool is;
    void *p = NULL;
    napi_value ab;
    size_t off;

    if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
        napi_typedarray_type t;
        size_t n;
        if (napi_get_typedarray_info(env, v, &t, &n, &p, &ab, &off) != napi_ok)
            return false;
        *data = p;
        *len = n * typedarray_elem_size(t);
        return true;
    }
    if (napi_is_dataview(env, v, &is) == napi_ok && is) {
        if (napi_get_dataview_info(env, v, len, &p, &ab, &off) != napi_ok)
            return false;
        *data = p;
        return true;
    }
    if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
        if (napi_get_arraybuffer_info(env, v, &p, len) != napi_ok)
            return false;
        *data = p;
        return true;
    }
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "slab must be a TypedArray, DataView or ArrayBuffer");
    return false;
}

/* The meta array: an Int32Array; *records = how many whole records of `words` it holds. */
static bool get_meta(napi_env env, napi_value v, size_t words, int32_t **meta, size_t *records)
{
    bool is;
    napi_typedarray_type t;
    size_t n, off;
    void *p;
    napi_value ab;

    if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
        napi_get_typedarray_info(env, v, &t, &n, &p, &ab, &off) != napi_ok || t != napi_int32_array) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "meta must be an Int32Array");
        return false;
    }
    *meta = p;
    *records = n / words;
    return true;
}

/* Clamps a requested packet count to [0, records]. */
static int32_t clamp_count(int32_t want, size_t records)
{
    if (want < 0)
        return 0;
    return (size_t)want > records ? (int32_t)records : want;
}

/*
 * Checks that records [0, count) describe spans inside the slab: offset word `off_w`, length
 * word `len_w` (META_CAP for reads, META_LEN for writes). Done before any I/O so a bad record
 * never leaves a batch half done.
 */
static bool check_spans(napi_env env, const int32_t *meta, size_t words, int32_t count, int len_w,
                        size_t slab_len)
{
    for (int32_t i = 0; i < count; i++) {
        const int32_t *r = meta + (size_t)i * words;
        int64_t off = r[META_OFF], len = r[len_w];
        if (off < 0 || len < 0 || (uint64_t)(off + len) > slab_len) {
            char msg[128];
            snprintf(msg, sizeof msg, "record %d: offset %lld + %s %lld is outside the slab (%zu bytes)",
                     i, (long long)off, len_w == META_CAP ? "capacity" : "length", (long long)len,
                     slab_len);
            napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */

/*
 * poll() one fd for `events` up to timeout_ms (-1 = forever). Returns 1 ready, 0 timed out or
 * interrupted (the caller simply returns what it has), -1 with errno on failure.
 */
static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    int r = poll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);

    if (r < 0)
        return errno == EINTR ? 0 : -1;
    return r > 0 ? 1 : 0;
}

static napi_value make_i32(napi_env env, int32_t v)
{
    napi_value out;
    return napi_create_int32(env, v, &out) == napi_ok ? out : NULL;
}

static bool set_i32(napi_env env, napi_value obj, const char *key, int32_t v)
{
    napi_value val;
    return napi_create_int32(env, v, &val) == napi_ok && napi_set_named_property(env, obj, key, val) == napi_ok;
}

/* ------------------------------------------------------------------------------------------ */
/* TUN                                                                                         */

/*
 * tunOpen(name, multiQueue, vnetHdr) → {fd, name}
 * open("/dev/net/tun", O_RDWR|O_CLOEXEC|O_NONBLOCK) + ioctl(TUNSETIFF, IFF_TUN|IFF_NO_PI
 * [|IFF_MULTI_QUEUE][|IFF_VNET_HDR]). Node has no ioctl(). With IFF_MULTI_QUEUE, each call
 * with the same name attaches one more queue (one fd per worker). An empty name lets the
 * kernel pick "tunN"; the actual name is returned. The device lives while an fd is open, in
 * whichever namespace it is moved to; the fd stays with this process.
 */
static napi_value tun_open(napi_env env, napi_callback_info info)
{
    napi_value argv[3], out, name_v;
    char name[IFNAMSIZ];
    bool multi_queue, vnet_hdr;
    struct ifreq ifr;
    int fd;

    if (!get_args(env, info, 3, argv) || !get_str(env, argv[0], "name", name, sizeof name) ||
        !get_bool(env, argv[1], &multi_queue) || !get_bool(env, argv[2], &vnet_hdr))
        return NULL;

    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        throw_errno(env, errno, "open", "/dev/net/tun");
        return NULL;
    }
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (multi_queue ? IFF_MULTI_QUEUE : 0) | (vnet_hdr ? IFF_VNET_HDR : 0);
    memcpy(ifr.ifr_name, name, strlen(name));
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        throw_errno(env, e, "ioctl(TUNSETIFF)", name);
        return NULL;
    }
    ifr.ifr_name[IFNAMSIZ - 1] = '\0';

    if (napi_create_object(env, &out) != napi_ok || !set_i32(env, out, "fd", fd) ||
        napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &name_v) != napi_ok ||
        napi_set_named_property(env, out, "name", name_v) != napi_ok) {
        close(fd);
        return NULL;
    }
    return out;
}

/*
 * tunSetOffload(fd, flags)
 * ioctl(TUNSETOFFLOAD): tells the kernel which offloads (TUN_F_CSUM, TUN_F_TSO4/6, TUN_F_USO4/6)
 * the reader of a vnetHdr queue handles, so it may hand over 64 KB GSO segments. Node has no ioctl().
 */
static napi_value tun_set_offload(napi_env env, napi_callback_info info)
{
    napi_value argv[2];
    int32_t fd, flags;

    if (!get_args(env, info, 2, argv) || !get_i32(env, argv[0], "fd", &fd) || !get_i32(env, argv[1], "flags", &flags))
        return NULL;
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(uint32_t)flags) < 0) {
        throw_errno(env, errno, "ioctl(TUNSETOFFLOAD)", NULL);
        return NULL;
    }
    return NULL;
}

/*
 * tunRead(fd, slab, meta, maxPackets, timeoutMs) → packets read
 * read() until EAGAIN or maxPackets, after at most one poll(POLLIN, timeoutMs) when nothing was
 * ready. A TUN queue has no batch read syscall, and Node offers only blocking readSync() (which
 * cannot be interrupted or timed out) or a libuv threadpool read per packet. For record i the
 * packet is read to slab[OFF, OFF+CAP); LEN gets its length (a packet longer than CAP is cut).
 */
static napi_value tun_read(napi_env env, napi_callback_info info)
{
    napi_value argv[5];
    int32_t fd, max, timeout, n = 0;
    uint8_t *slab;
    size_t slab_len, records;
    int32_t *meta;
    bool waited = false;

    if (!get_args(env, info, 5, argv) || !get_i32(env, argv[0], "fd", &fd) || !get_slab(env, argv[1], &slab, &slab_len) ||
        !get_meta(env, argv[2], TUN_RECORD_WORDS, &meta, &records) || !get_i32(env, argv[3], "maxPackets", &max) ||
        !get_i32(env, argv[4], "timeoutMs", &timeout))
        return NULL;
    max = clamp_count(max, records);
    if (!check_spans(env, meta, TUN_RECORD_WORDS, max, META_CAP, slab_len))
        return NULL;

    while (n < max) {
        int32_t *r = meta + (size_t)n * TUN_RECORD_WORDS;
        ssize_t got = read(fd, slab + r[META_OFF], (size_t)r[META_CAP]);
        int e;

        if (got >= 0) {
            r[META_LEN] = (int32_t)got;
            r[META_ERR] = 0;
            n++;
            continue;
        }
        e = errno;
        if (e == EINTR)
            continue;
        if (e == EAGAIN) {
            int w;
            if (n > 0 || waited || timeout == 0)
                break;
            w = wait_fd(fd, POLLIN, timeout);
            if (w < 0) {
                throw_errno(env, errno, "poll", NULL);
                return NULL;
            }
            if (w == 0)
                break;
            waited = true;
            continue;
        }
        if (n > 0)
            break; /* hand over what we have; the error comes back on the next call */
        throw_errno(env, e, "read", NULL);
        return NULL;
    }
    return make_i32(env, n);
}

/*
 * tunWrite(fd, slab, meta, count, timeoutMs) → records processed
 * One write() per packet (the TUN has no batch write). A per-packet failure (EINVAL: not an IP
 * packet; EIO: the device is down) is stored in that record's ERR and the batch goes on. If the
 * queue would block, waits up to timeoutMs for POLLOUT, else returns early: records from the
 * returned index on were not attempted.
 */
static napi_value tun_write(napi_env env, napi_callback_info info)
{
    napi_value argv[5];
    int32_t fd, count, timeout, i = 0;
    uint8_t *slab;
    size_t slab_len, records;
    int32_t *meta;

    if (!get_args(env, info, 5, argv) || !get_i32(env, argv[0], "fd", &fd) || !get_slab(env, argv[1], &slab, &slab_len) ||
        !get_meta(env, argv[2], TUN_RECORD_WORDS, &meta, &records) || !get_i32(env, argv[3], "count", &count) ||
        !get_i32(env, argv[4], "timeoutMs", &timeout))
        return NULL;
    count = clamp_count(count, records);
    if (!check_spans(env, meta, TUN_RECORD_WORDS, count, META_LEN, slab_len))
        return NULL;

    while (i < count) {
        int32_t *r = meta + (size_t)i * TUN_RECORD_WORDS;
        ssize_t put = write(fd, slab + r[META_OFF], (size_t)r[META_LEN]);
        int e;

        if (put >= 0) {
            r[META_ERR] = 0;
            i++;
            continue;
        }
        e = errno;
        if (e == EINTR)
            continue;
        if (e == EAGAIN) {
            int w = timeout == 0 ? 0 : wait_fd(fd, POLLOUT, timeout);
            if (w < 0) {
                throw_errno(env, errno, "poll", NULL);
                return NULL;
            }
            if (w == 0)
                break;
            continue;
        }
        if (is_fd_error(e)) {
            throw_errno(env, e, "write", NULL);
            return NULL;
        }
        r[META_ERR] = e;
        i++;
    }
    return make_i32(env, i);
}

/* ------------------------------------------------------------------------------------------ */
/* UDP                                                                                         */

union sockaddr_any {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

/* Room for one IPV6_PKTINFO, one IP_PKTINFO and one UDP_SEGMENT/UDP_GRO control message. */
union pktinfo_space {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(int))];
};

/* Stores a 4-byte IPv4 address as ::ffff:a.b.c.d into 16 bytes at dst. */
static void put_v4_mapped(void *dst, const struct in_addr *a)
{
    uint8_t *d = dst;
    memset(d, 0, 10);
    d[10] = 0xff;
    d[11] = 0xff;
    memcpy(d + 12, a, 4);
}

static bool is_zero16(const void *p)
{
    static const uint8_t zero[16];
    return memcmp(p, zero, 16) == 0;
}

static int set_opt_int(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof value) < 0 ? errno : 0;
}

/* Asks for a socket buffer size; root (CAP_NET_ADMIN) may exceed net.core.[rw]mem_max. */
static int set_buf(int fd, int force_name, int name, int bytes)
{
    if (set_opt_int(fd, SOL_SOCKET, force_name, bytes) == 0)
        return 0;
    return set_opt_int(fd, SOL_SOCKET, name, bytes);
}

static int get_opt_int(int fd, int level, int name)
{
    int v = 0;
    socklen_t len = sizeof v;
    return getsockopt(fd, level, name, &v, &len) < 0 ? -1 : v;
}

/*
 * Parses "addr" or "addr%scope" (IPv6; scope = interface name or number) into sa.
 * Returns 0, or an errno for a bad scope; -1 for an unparseable address.
 */
static int parse_addr(int af, const char *text, int port, union sockaddr_any *sa, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + IFNAMSIZ + 2];
    char *pct;

    memset(sa, 0, sizeof *sa);
    snprintf(host, sizeof host, "%s", text);
    if (af == AF_INET) {
        sa->in4.sin_family = AF_INET;
        sa->in4.sin_port = htons((uint16_t)port);
        *len = sizeof sa->in4;
        return inet_pton(AF_INET, host, &sa->in4.sin_addr) == 1 ? 0 : -1;
    }
    sa->in6.sin6_family = AF_INET6;
    sa->in6.sin6_port = htons((uint16_t)port);
    *len = sizeof sa->in6;
    pct = strchr(host, '%');
    if (pct != NULL) {
        char *end;
        unsigned long idx;
        *pct++ = '\0';
        idx = strtoul(pct, &end, 10);
        if (*pct == '\0' || *end != '\0')
            idx = if_nametoindex(pct);
        if (idx == 0)
            return ENODEV;
        sa->in6.sin6_scope_id = (uint32_t)idx;
    }
    return inet_pton(AF_INET6, host, &sa->in6.sin6_addr) == 1 ? 0 : -1;
}

/*
 * udpOpen(family, addr, port, reusePort, v6only, rcvbuf, sndbuf, dontFragment)
 *   → {fd, port, rcvbuf, sndbuf}
 * socket(SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC), setsockopt(), bind(), getsockname().
 * What node:dgram cannot do: IP_PKTINFO / IPV6_RECVPKTINFO (learn the local address a packet
 * came to, to reply from it), SO_RCVBUFFORCE/SO_SNDBUFFORCE (buffers beyond rmem_max as root),
 * IP(V6)_MTU_DISCOVER = PMTUDISC_DO (dontFragment: oversize sends fail with EMSGSIZE instead of
 * being fragmented), and handing a raw fd to recvmmsg()/sendmmsg() from any thread.
 * SO_REUSEPORT lets one socket per worker thread share the port (the kernel spreads flows).
 * port 0 picks a free port; the bound port is returned. rcvbuf/sndbuf 0 keep the defaults;
 * the sizes the kernel actually granted are returned.
 */
static napi_value udp_open(napi_env env, napi_callback_info info)
{
    napi_value argv[8], out;
    int32_t family, port, rcvbuf, sndbuf;
    bool reuse_port, v6only, dont_fragment;
    char addr[INET6_ADDRSTRLEN + IFNAMSIZ + 2];
    union sockaddr_any sa;
    socklen_t sa_len;
    int af, fd, e, perr;
    const char *what = NULL;

    if (!get_args(env, info, 8, argv) || !get_i32(env, argv[0], "family", &family) ||
        !get_str(env, argv[1], "address", addr, sizeof addr) || !get_i32(env, argv[2], "port", &port) ||
        !get_bool(env, argv[3], &reuse_port) || !get_bool(env, argv[4], &v6only) ||
        !get_i32(env, argv[5], "rcvbuf", &rcvbuf) || !get_i32(env, argv[6], "sndbuf", &sndbuf) ||
        !get_bool(env, argv[7], &dont_fragment))
        return NULL;
    if (family != 4 && family != 6) {
        napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "family must be 4 or 6");
        return NULL;
    }
    if (port < 0 || port > 65535) {
        napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "port must be 0..65535");
        return NULL;
    }
    af = family == 4 ? AF_INET : AF_INET6;
    perr = parse_addr(af, addr, port, &sa, &sa_len);
    if (perr < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "not an IPv%d address: %s", family, addr);
        napi_throw_type_error(env, "ERR_INVALID_IP_ADDRESS", msg);
        return NULL;
    }
    if (perr > 0) {
        throw_errno(env, perr, "if_nametoindex", addr);
        return NULL;
    }

    fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0) {
        throw_errno(env, errno, "socket", NULL);
        return NULL;
    }
    /* Each step names itself for the error message; e != 0 stops the chain. */
    e = 0;
    if (!e && reuse_port && (e = set_opt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)))
        what = "setsockopt(SO_REUSEPORT)";
    if (!e && af == AF_INET6 && (e = set_opt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? 1 : 0)))
        what = "setsockopt(IPV6_V6ONLY)";
    /* On a dual-stack socket IPV6_RECVPKTINFO also reports IPv4 arrivals, v4-mapped. */
    if (!e && af == AF_INET6 && (e = set_opt_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)))
        what = "setsockopt(IPV6_RECVPKTINFO)";
    if (!e && af == AF_INET && (e = set_opt_int(fd, IPPROTO_IP, IP_PKTINFO, 1)))
        what = "setsockopt(IP_PKTINFO)";
    if (!e && dont_fragment && af == AF_INET6 &&
        (e = set_opt_int(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)))
        what = "setsockopt(IPV6_MTU_DISCOVER)";
    if (!e && dont_fragment && (af == AF_INET || !v6only) &&
        (e = set_opt_int(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)))
        what = "setsockopt(IP_MTU_DISCOVER)";
    if (!e && rcvbuf > 0 && (e = set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf)))
        what = "setsockopt(SO_RCVBUF)";
    if (!e && sndbuf > 0 && (e = set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf)))
        what = "setsockopt(SO_SNDBUF)";
    if (!e && bind(fd, &sa.sa, sa_len) < 0) {
        e = errno;
        what = "bind";
    }
    if (!e) {
        sa_len = sizeof sa;
        if (getsockname(fd, &sa.sa, &sa_len) < 0) {
            e = errno;
            what = "getsockname";
        }
    }
    if (e) {
        char subject[INET6_ADDRSTRLEN + IFNAMSIZ + 16];
        close(fd);
        snprintf(subject, sizeof subject, af == AF_INET6 ? "[%s]:%d" : "%s:%d", addr, port);
        throw_errno(env, e, what, subject);
        return NULL;
    }

    if (napi_create_object(env, &out) != napi_ok || !set_i32(env, out, "fd", fd) ||
        !set_i32(env, out, "port", ntohs(af == AF_INET ? sa.in4.sin_port : sa.in6.sin6_port)) ||
        !set_i32(env, out, "rcvbuf", get_opt_int(fd, SOL_SOCKET, SO_RCVBUF)) ||
        !set_i32(env, out, "sndbuf", get_opt_int(fd, SOL_SOCKET, SO_SNDBUF))) {
        close(fd);
        return NULL;
    }
    return out;
}

/* Fills the peer and local fields of a received record from msg_name and the pktinfo cmsg. */
static void fill_recv_record(int32_t *r, const struct msghdr *mh, unsigned int len)
{
    const union sockaddr_any *from = mh->msg_name;
    uint8_t *addr = (uint8_t *)(r + UDP_META_ADDR);
    uint8_t *local = (uint8_t *)(r + UDP_META_LOCAL);
    struct cmsghdr *c;

    r[META_LEN] = (int32_t)len;
    r[META_ERR] = (mh->msg_flags & MSG_TRUNC) ? EMSGSIZE : 0;
    memset(local, 0, 16);
    r[UDP_META_IFINDEX] = 0;
    r[UDP_META_GSO] = 0;
    if (from->sa.sa_family == AF_INET) {
        r[UDP_META_FAMILY] = 4;
        r[UDP_META_PORT] = ntohs(from->in4.sin_port);
        put_v4_mapped(addr, &from->in4.sin_addr);
    } else {
        /* A v4-mapped source on a dual-stack socket is IPv4: family 4, same 16 bytes. */
        r[UDP_META_FAMILY] = IN6_IS_ADDR_V4MAPPED(&from->in6.sin6_addr) ? 4 : 6;
        r[UDP_META_PORT] = ntohs(from->in6.sin6_port);
        memcpy(addr, &from->in6.sin6_addr, 16);
    }
    for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR((struct msghdr *)mh, c)) {
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            memcpy(local, &pi.ipi6_addr, 16);
            r[UDP_META_IFINDEX] = (int32_t)pi.ipi6_ifindex;
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            put_v4_mapped(local, &pi.ipi_addr); /* the header's destination address */
            r[UDP_META_IFINDEX] = pi.ipi_ifindex;
        } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int gso;
            memcpy(&gso, CMSG_DATA(c), sizeof gso);
            /* one datagram is not a coalesced one, whatever the kernel says */
            r[UDP_META_GSO] = (unsigned int)gso < len ? gso : 0;
        }
    }
}

/*
 * udpRecv(fd, slab, meta, maxPackets, timeoutMs) → datagrams received
 * recvmmsg(MSG_DONTWAIT) in chunks of UDP_CHUNK until the socket is drained or maxPackets,
 * after at most one poll(POLLIN, timeoutMs) when nothing was ready (recvmmsg's own timeout
 * is only checked between datagrams, so it cannot bound an idle wait). node:dgram delivers one
 * datagram per callback with a fresh Buffer, and never the local address.
 * Per record: LEN (cut to CAP, then ERR = EMSGSIZE), FAMILY/PORT/ADDR of the sender, LOCAL
 * (the destination address of the datagram, from IP_PKTINFO/IPV6_PKTINFO) and IFINDEX.
 */
static napi_value udp_recv(napi_env env, napi_callback_info info)
{
    napi_value argv[5];
    int32_t fd, max, timeout, n = 0;
    uint8_t *slab;
    size_t slab_len, records;
    int32_t *meta;
    bool waited = false;
    struct mmsghdr msgs[UDP_CHUNK];
    struct iovec iov[UDP_CHUNK];
    union sockaddr_any from[UDP_CHUNK];
    union pktinfo_space ctl[UDP_CHUNK];

    if (!get_args(env, info, 5, argv) || !get_i32(env, argv[0], "fd", &fd) || !get_slab(env, argv[1], &slab, &slab_len) ||
        !get_meta(env, argv[2], UDP_RECORD_WORDS, &meta, &records) || !get_i32(env, argv[3], "maxPackets", &max) ||
        !get_i32(env, argv[4], "timeoutMs", &timeout))
        return NULL;
    max = clamp_count(max, records);
    if (!check_spans(env, meta, UDP_RECORD_WORDS, max, META_CAP, slab_len))
        return NULL;

    while (n < max) {
        int k = max - n < UDP_CHUNK ? max - n : UDP_CHUNK;
        int got;

        for (int j = 0; j < k; j++) {
            const int32_t *r = meta + (size_t)(n + j) * UDP_RECORD_WORDS;
            iov[j].iov_base = slab + r[META_OFF];
            iov[j].iov_len = (size_t)r[META_CAP];
            memset(&msgs[j], 0, sizeof msgs[j]);
            msgs[j].msg_hdr.msg_name = &from[j];
            msgs[j].msg_hdr.msg_namelen = sizeof from[j];
            msgs[j].msg_hdr.msg_iov = &iov[j];
            msgs[j].msg_hdr.msg_iovlen = 1;
            msgs[j].msg_hdr.msg_control = ctl[j].buf;
            msgs[j].msg_hdr.msg_controllen = sizeof ctl[j].buf;
        }
        got = recvmmsg(fd, msgs, (unsigned int)k, MSG_DONTWAIT, NULL);
        if (got < 0) {
            int e = errno, w;
            if (e == EINTR)
                continue;
            if (e == EAGAIN) {
                if (n > 0 || waited || timeout == 0)
                    break;
                w = wait_fd(fd, POLLIN, timeout);
                if (w < 0) {
                    throw_errno(env, errno, "poll", NULL);
                    return NULL;
                }
                if (w == 0)
                    break;
                waited = true;
                continue;
            }
            if (n > 0)
                break;
            throw_errno(env, e, "recvmmsg", NULL);
            return NULL;
        }
        for (int j = 0; j < got; j++)
            fill_recv_record(meta + (size_t)(n + j) * UDP_RECORD_WORDS, &msgs[j].msg_hdr, msgs[j].msg_len);
        n += got;
        if (got < k)
            break; /* drained */
    }
    return make_i32(env, n);
}

/*
 * Builds the msghdr for one send record: destination from FAMILY/ADDR/PORT, and an
 * IP_PKTINFO/IPV6_PKTINFO control message when LOCAL or IFINDEX is set, so the datagram
 * leaves from that address (and interface). Returns false for a family other than 4 or 6.
 */
static bool build_send(int32_t *r, uint8_t *slab, struct msghdr *mh, struct iovec *iov, union sockaddr_any *to,
                       union pktinfo_space *ctl)
{
    const uint8_t *addr = (const uint8_t *)(r + UDP_META_ADDR);
    const uint8_t *local = (const uint8_t *)(r + UDP_META_LOCAL);
    int32_t ifindex = r[UDP_META_IFINDEX];
    int32_t gso = r[UDP_META_GSO];
    bool want_src = ifindex != 0 || !is_zero16(local);
    bool want_gso = gso > 0 && gso < r[META_LEN];
    size_t used = 0; /* control bytes filled so far */
    struct cmsghdr *c = (struct cmsghdr *)ctl->buf;

    memset(mh, 0, sizeof *mh);
    memset(to, 0, sizeof *to);
    iov->iov_base = slab + r[META_OFF];
    iov->iov_len = (size_t)r[META_LEN];
    mh->msg_iov = iov;
    mh->msg_iovlen = 1;
    mh->msg_name = to;
    if (want_src || want_gso) {
        memset(ctl, 0, sizeof *ctl);
        mh->msg_control = ctl->buf;
    }

    if (r[UDP_META_FAMILY] == 4) {
        to->in4.sin_family = AF_INET;
        to->in4.sin_port = htons((uint16_t)r[UDP_META_PORT]);
        memcpy(&to->in4.sin_addr, addr + 12, 4);
        mh->msg_namelen = sizeof to->in4;
        if (want_src) {
            /* For sendmsg, ipi_spec_dst is the source address; ipi_addr is ignored. */
            struct in_pktinfo pi = { .ipi_ifindex = ifindex };
            memcpy(&pi.ipi_spec_dst, local + 12, 4);
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof pi);
            memcpy(CMSG_DATA(c), &pi, sizeof pi);
            used = CMSG_SPACE(sizeof pi);
        }
    } else if (r[UDP_META_FAMILY] == 6) {
        to->in6.sin6_family = AF_INET6;
        to->in6.sin6_port = htons((uint16_t)r[UDP_META_PORT]);
        memcpy(&to->in6.sin6_addr, addr, 16);
        /* Only used by the kernel for link-local (scoped) destinations. */
        to->in6.sin6_scope_id = (uint32_t)ifindex;
        mh->msg_namelen = sizeof to->in6;
        if (want_src) {
            struct in6_pktinfo pi = { .ipi6_ifindex = (unsigned int)ifindex };
            memcpy(&pi.ipi6_addr, local, 16);
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof pi);
            memcpy(CMSG_DATA(c), &pi, sizeof pi);
            used = CMSG_SPACE(sizeof pi);
        }
    } else {
        return false;
    }
    if (want_gso) {
        uint16_t seg = (uint16_t)gso;
        c = (struct cmsghdr *)(ctl->buf + used);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof seg);
        memcpy(CMSG_DATA(c), &seg, sizeof seg);
        used += CMSG_SPACE(sizeof seg);
    }
    mh->msg_controllen = used;
    return true;
}

/*
 * udpSend(fd, slab, meta, count, timeoutMs) → records processed
 * sendmmsg(MSG_DONTWAIT) in chunks of UDP_CHUNK; node:dgram has one send per call and no way to
 * choose the source address. When sendmmsg stops at a failing datagram (EMSGSIZE, ENETUNREACH,
 * EINVAL for a source we do not own, …), that record's ERR gets errno and the rest of the batch
 * still goes. A record with a family other than 4/6 gets EAFNOSUPPORT. If the socket buffer is
 * full, waits up to timeoutMs for POLLOUT, else returns early: records from the returned index
 * on were not attempted.
 */
static napi_value udp_send(napi_env env, napi_callback_info info)
{
    napi_value argv[5];
    int32_t fd, count, timeout, i = 0;
    uint8_t *slab;
    size_t slab_len, records;
    int32_t *meta;
    struct mmsghdr msgs[UDP_CHUNK];
    struct iovec iov[UDP_CHUNK];
    union sockaddr_any to[UDP_CHUNK];
    union pktinfo_space ctl[UDP_CHUNK];

    if (!get_args(env, info, 5, argv) || !get_i32(env, argv[0], "fd", &fd) || !get_slab(env, argv[1], &slab, &slab_len) ||
        !get_meta(env, argv[2], UDP_RECORD_WORDS, &meta, &records) || !get_i32(env, argv[3], "count", &count) ||
        !get_i32(env, argv[4], "timeoutMs", &timeout))
        return NULL;
    count = clamp_count(count, records);
    if (!check_spans(env, meta, UDP_RECORD_WORDS, count, META_LEN, slab_len))
        return NULL;

    while (i < count) {
        int k = 0, j = 0;

        /* A chunk is a run of consecutive well-formed records. */
        while (k < UDP_CHUNK && i + k < count &&
               build_send(meta + (size_t)(i + k) * UDP_RECORD_WORDS, slab, &msgs[k].msg_hdr, &iov[k], &to[k], &ctl[k]))
            k++;
        if (k == 0) {
            meta[(size_t)i * UDP_RECORD_WORDS + META_ERR] = EAFNOSUPPORT;
            i++;
            continue;
        }
        while (j < k) {
            int sent = sendmmsg(fd, msgs + j, (unsigned int)(k - j), MSG_DONTWAIT);
            int e;

            if (sent > 0) {
                for (int t = j; t < j + sent; t++)
                    meta[(size_t)(i + t) * UDP_RECORD_WORDS + META_ERR] = 0;
                j += sent;
                continue;
            }
            e = errno;
            if (e == EINTR)
                continue;
            if (e == EAGAIN) {
                int w = timeout == 0 ? 0 : wait_fd(fd, POLLOUT, timeout);
                if (w < 0) {
                    throw_errno(env, errno, "poll", NULL);
                    return NULL;
                }
                if (w == 0)
                    return make_i32(env, i + j);
                continue;
            }
            if (is_fd_error(e)) {
                throw_errno(env, e, "sendmmsg", NULL);
                return NULL;
            }
            meta[(size_t)(i + j) * UDP_RECORD_WORDS + META_ERR] = e; /* this datagram only */
            j++;
        }
        i += k;
    }
    return make_i32(env, i);
}

/* ------------------------------------------------------------------------------------------ */
/* Misc                                                                                        */

/*
 * ifIndex(name) → index
 * if_nametoindex() (an ioctl(SIOCGIFINDEX) in the calling thread's network namespace); Node
 * only has os.networkInterfaces(), which has no indexes and skips interfaces without addresses.
 */
/* SO_MARK on a socket (CAP_NET_ADMIN): `wg set … fwmark N`, which wg-quick's policy routing
 * uses to keep the tunnel's own datagrams out of the tunnel. 0 clears it. */
static napi_value udp_set_mark(napi_env env, napi_callback_info info)
{
    napi_value argv[2];
    int32_t fd, mark;
    if (!get_args(env, info, 2, argv) || !get_i32(env, argv[0], "fd", &fd) || !get_i32(env, argv[1], "mark", &mark))
        return NULL;
    int e = set_opt_int(fd, SOL_SOCKET, SO_MARK, mark);
    if (e != 0)
        throw_errno(env, e, "setsockopt(SO_MARK)", NULL);
    return NULL;
}

/* setsockopt(SOL_UDP, UDP_GRO): the kernel may hand over several datagrams of one sender as one
 * buffer, with their size in a UDP_GRO cmsg (UDP_META_GSO). Throws if the kernel refuses. */
static napi_value udp_set_gro(napi_env env, napi_callback_info info)
{
    napi_value argv[2];
    int32_t fd;
    bool on;
    if (!get_args(env, info, 2, argv) || !get_i32(env, argv[0], "fd", &fd) || !get_bool(env, argv[1], &on))
        return NULL;
    int e = set_opt_int(fd, SOL_UDP, UDP_GRO, on ? 1 : 0);
    if (e != 0)
        throw_errno(env, e, "setsockopt(UDP_GRO)", NULL);
    return NULL;
}

static napi_value if_index(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    char name[IFNAMSIZ];
    unsigned int idx;

    if (!get_args(env, info, 1, argv) || !get_str(env, argv[0], "name", name, sizeof name))
        return NULL;
    idx = if_nametoindex(name);
    if (idx == 0) {
        throw_errno(env, errno, "if_nametoindex", name);
        return NULL;
    }
    return make_i32(env, (int32_t)idx);
}

/*
 * close(fd)
 * close(). fs.closeSync() would do too; this keeps the fds this module opened in its own hands.
 * Stop any thread blocked in tunRead/udpRecv on the fd first: a closed number can be reused.
 */
static napi_value close_fd(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    int32_t fd;

    if (!get_args(env, info, 1, argv) || !get_i32(env, argv[0], "fd", &fd))
        return NULL;
    /* On Linux the fd is released even when close() reports EINTR; never retry. */
    if (close(fd) < 0 && errno != EINTR) {
        throw_errno(env, errno, "close", NULL);
        return NULL;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* fd readiness in the event loop                                                             */
/*
 * Node can be told that a socket or pipe it owns is readable, but not an arbitrary fd such as
 * a TUN queue or the sockets above. libuv can: a uv_poll_t on the calling thread's loop (the
 * main thread's, or a worker's) calls back into JS whenever the fd is readable, and JS then
 * drains it with tunRead/udpRecv(timeoutMs = 0). The handle keeps the loop alive until
 * fdUnwatch(); the callback gets the poll status (< 0: a libuv error) or the events.
 */
typedef struct {
    uv_poll_t poll;
    napi_env env;
    napi_ref callback;
    napi_async_context context;
    bool stopped;   /* fdUnwatch ran: no more callbacks */
    bool closed;    /* libuv is done with the handle */
    bool finalized; /* the JS handle was garbage-collected */
} fd_watch;

/* The struct is freed once libuv has closed the handle AND the JS handle is gone, so a late
 * fdUnwatch() on a stopped handle only ever reads live memory. */
static void watch_closed(uv_handle_t *h)
{
    fd_watch *w = h->data;
    w->closed = true;
    if (w->finalized)
        free(w);
}

static void watch_finalize(napi_env env, void *data, void *hint)
{
    fd_watch *w = data;
    w->finalized = true;
    if (w->closed)
        free(w);
}

static void watch_ready(uv_poll_t *p, int status, int events)
{
    fd_watch *w = p->data;
    if (w->stopped)
        return;
    napi_env env = w->env;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok)
        return;
    napi_value cb, recv, argv[1], result;
    if (napi_get_reference_value(env, w->callback, &cb) == napi_ok && napi_get_global(env, &recv) == napi_ok) {
        argv[0] = make_i32(env, status < 0 ? status : events);
        if (napi_make_callback(env, w->context, recv, cb, 1, argv, &result) == napi_pending_exception) {
            napi_value err;
            if (napi_get_and_clear_last_exception(env, &err) == napi_ok)
                napi_fatal_exception(env, err); /* -> process 'uncaughtException', as for any callback */
        }
    }
    napi_close_handle_scope(env, scope);
}

static void watch_release(napi_env env, fd_watch *w)
{
    if (w->stopped)
        return;
    w->stopped = true;
    uv_poll_stop(&w->poll);
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->context);
    w->poll.data = w;
    uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static napi_value fd_watch_start(napi_env env, napi_callback_info info)
{
    napi_value argv[2], name, handle;
    int32_t fd;
    napi_valuetype t;
    uv_loop_t *loop;
    if (!get_args(env, info, 2, argv) || !get_i32(env, argv[0], "fd", &fd))
        return NULL;
    if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
        napi_throw_type_error(env, NULL, "callback must be a function");
        return NULL;
    }
    if (napi_get_uv_event_loop(env, &loop) != napi_ok)
        return NULL;
    fd_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        throw_errno(env, ENOMEM, "fdWatch", NULL);
        return NULL;
    }
    w->env = env;
    int rc = uv_poll_init(loop, &w->poll, fd);
    if (rc < 0) {
        free(w);
        throw_errno(env, -rc, "uv_poll_init", NULL);
        return NULL;
    }
    w->poll.data = w;
    napi_create_reference(env, argv[1], 1, &w->callback);
    napi_create_string_utf8(env, "sixpn:fdWatch", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &w->context);
    rc = uv_poll_start(&w->poll, UV_READABLE, watch_ready);
    if (rc < 0) {
        w->finalized = true; /* no JS handle will exist: free on close */
        watch_release(env, w);
        throw_errno(env, -rc, "uv_poll_start", NULL);
        return NULL;
    }
    if (napi_create_external(env, w, watch_finalize, NULL, &handle) != napi_ok)
        return NULL;
    return handle;
}

static napi_value fd_watch_stop(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    void *data;
    if (!get_args(env, info, 1, argv))
        return NULL;
    if (napi_get_value_external(env, argv[0], &data) != napi_ok) {
        napi_throw_type_error(env, NULL, "not an fdWatch handle");
        return NULL;
    }
    watch_release(env, data);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Module                                                                                      */

NAPI_MODULE_INIT()
{
    static const struct {
        const char *name;
        int32_t value;
    } constants[] = {
        { "META_OFF", META_OFF },
        { "META_CAP", META_CAP },
        { "META_LEN", META_LEN },
        { "META_ERR", META_ERR },
        { "TUN_RECORD_WORDS", TUN_RECORD_WORDS },
        { "UDP_META_FAMILY", UDP_META_FAMILY },
        { "UDP_META_PORT", UDP_META_PORT },
        { "UDP_META_ADDR", UDP_META_ADDR },
        { "UDP_META_LOCAL", UDP_META_LOCAL },
        { "UDP_META_IFINDEX", UDP_META_IFINDEX },
        { "UDP_META_GSO", UDP_META_GSO },
        { "UDP_RECORD_WORDS", UDP_RECORD_WORDS },
        { "UDP_CHUNK", UDP_CHUNK },
        { "IFNAMSIZ", IFNAMSIZ },
        { "VNET_HDR_LEN", (int32_t)sizeof(struct virtio_net_hdr) },
        { "TUN_F_CSUM", TUN_F_CSUM },
        { "TUN_F_TSO4", TUN_F_TSO4 },
        { "TUN_F_TSO6", TUN_F_TSO6 },
        { "TUN_F_TSO_ECN", TUN_F_TSO_ECN },
        { "TUN_F_USO4", TUN_F_USO4 },
        { "TUN_F_USO6", TUN_F_USO6 },
    };
    static const struct {
        const char *name;
        napi_callback fn;
    } fns[] = {
        { "tunOpen", tun_open },   { "tunSetOffload", tun_set_offload },
        { "tunRead", tun_read },   { "tunWrite", tun_write },
        { "udpOpen", udp_open },   { "udpRecv", udp_recv },
        { "udpSend", udp_send },   { "ifIndex", if_index },
        { "udpSetMark", udp_set_mark }, { "udpSetGro", udp_set_gro },
        { "close", close_fd },
        { "fdWatch", fd_watch_start }, { "fdUnwatch", fd_watch_stop },
    };

    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        napi_value f;
        if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
            napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
            return NULL;
    }
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
        if (!set_i32(env, exports, constants[i].name, constants[i].value))
            return NULL;
    return exports;
}
