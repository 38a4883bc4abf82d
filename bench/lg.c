/*
 * lg.c - small, bounded HTTPS load generator (epoll + OpenSSL, one thread).
 *
 * Drives HTTP/1.1 over TLS either directly to a server, directly to a
 * TLS-terminating listener (e.g. sslsplit static mode), or through an HTTP
 * forward proxy with CONNECT.  Two modes:
 *   ka  : keep-alive; each of -c connections sends requests back to back
 *         (one in flight per connection); latency = request write -> full
 *         response.
 *   new : one request per connection; each connection does TCP connect,
 *         [CONNECT], full TLS handshake (no tickets / session reuse), one
 *         request, close.  latency = TCP connect start -> full response.
 *   idle: (sealgate bench extension) each of -c connections does TCP connect,
 *         [CONNECT], full TLS handshake, one keep-alive request, then is held
 *         open without traffic.  At most --ramp connections are being set up
 *         at once.  When every connection is held (or -d runs out) lg prints
 *         "HELD <n>" on stderr, holds them until the file --hold-until names
 *         exists (at most --hold seconds), then exits.
 *         latency = TCP connect start -> first response (setup time).
 *
 * --handles FILE (one handle per line): every request takes the next handle,
 * round robin, in place of the token @HANDLE@ in the -H values, --expect and
 * --expect-alt; @CONN_HANDLE@ there is the first handle sent on the connection.
 * A response passes when it contains --expect or (if given) --expect-alt, so
 * each one is checked against the handles it was sent with. Handles are never
 * printed.
 *
 * Every run is bounded by -d seconds AND -n requests (whichever comes first;
 * once measuring, at most -n requests are sent in ka mode), plus a hard
 * wall-clock alarm at d + warmup + hold + 5 s.
 * Output: one JSON object on stdout; rx_bytes counts the responses completed while
 * measuring as received (head, body, chunk framing).
 *
 * Build: cc -O2 -o lg lg.c -lssl -lcrypto
 * Origin: shared/bench/lg.c (the organisation harness), extended for sealgate:
 * idle mode (--hold-until), --handles, heap receive buffers, RLIMIT_NOFILE raised
 * to the hard limit, rx_bytes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { ST_IDLE, ST_TCP, ST_PXW, ST_PXR, ST_TLS, ST_REQW, ST_RESPR, ST_HELD };

struct conn {
    int fd;
    SSL *ssl;
    int st;
    int woff;
    int rlen;
    int reqs;
    uint64_t t_conn, t_req, retry_at;
    char *rbuf;         /* rbufsz bytes */
    const char *req;    /* the request being sent: reqbuf, or reqown with --handles */
    int reqlen;
    const char *expect; /* cfg.expect, or expown with --handles */
    const char *alt;    /* cfg.expect_alt, or altown with --handles */
    char *reqown, *expown, *altown;
    const char *h0;     /* --handles: first handle sent since connect */
};

static struct {
    struct sockaddr_in addr;
    const char *connect_target; /* CONNECT host:port, NULL = no proxy */
    const char *name;           /* TLS name: SNI (if not IP) + verification */
    const char *host;           /* Host header */
    const char *path;
    const char *cafile;
    const char *expect;
    const char *expect_alt; /* also accepted instead of expect */
    char hdrs[4096];
    int nconns;
    double duration, warmup;
    long maxreq;
    int mode_new;
    int mode_idle;
    int ramp;
    double hold;
    const char *hold_until; /* idle: release the held connections once this file exists */
    const char *handles;    /* file of handles, one per line, for @HANDLE@ */
    int name_is_ip;
} cfg;

static SSL_CTX *ctx;
static int ep;
static char reqbuf[8192];
static int reqlen;
static char pxbuf[1024];
static int pxlen;
static uint32_t *lat;
static long nlat, completed_total;
static long n_connects, n_tls, n_err_conn, n_err_proxy, n_err_tls, n_err_io,
    n_non200, n_expect_fail, n_closed_by_peer;
static uint64_t t_measure_start, t_end;
static int measuring;
static char first_err[256];
static char tls_info[128];
static int rbufsz = 65536;
static long n_held;
static long n_issued; /* requests sent while measuring */
static long long rx_bytes; /* bytes of the responses completed while measuring (head + body as received) */

#define HANDLE_TOKEN "@HANDLE@"
#define CONN_HANDLE_TOKEN "@CONN_HANDLE@"
#define HANDLES_MAX 10000000
static char **handles; /* --handles: the lines of the file */
static long nhandles, next_handle;
static size_t handle_maxlen;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

static void note_err(const char *what)
{
    if (!first_err[0]) {
        unsigned long e = ERR_peek_error();
        char eb[160] = "";
        if (e) ERR_error_string_n(e, eb, sizeof eb);
        snprintf(first_err, sizeof first_err, "%s%s%s%s", what, errno ? ": " : "",
                 errno ? strerror(errno) : "", eb[0] ? eb : "");
        for (char *p = first_err; *p; p++)
            if (*p == '"' || *p == '\\') *p = '\'';
    }
    ERR_clear_error();
}

static void set_ev(struct conn *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_close(struct conn *c, int delay_us)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd); /* also removes from epoll */
        c->fd = -1;
    }
    c->st = ST_IDLE;
    c->retry_at = now_us() + delay_us;
}

static void fail(struct conn *c, long *ctr, const char *what)
{
    if (measuring) (*ctr)++;
    note_err(what);
    conn_close(c, cfg.mode_idle ? 100000 : 10000);
}

static void drive(struct conn *c);

static void conn_start(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fail(c, &n_err_conn, "socket");
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->t_conn = now_us();
    c->h0 = NULL;
    c->rlen = 0;
    c->reqs = 0;
    c->woff = 0;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
    if (measuring) n_connects++;
    int r = connect(c->fd, (struct sockaddr *)&cfg.addr, sizeof cfg.addr);
    if (r < 0 && errno != EINPROGRESS) {
        fail(c, &n_err_conn, "connect");
        return;
    }
    c->st = ST_TCP;
}

static int tls_begin(struct conn *c)
{
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    if (!cfg.name_is_ip) SSL_set_tlsext_host_name(c->ssl, cfg.name);
    if (cfg.cafile) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (cfg.name_is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(vp, cfg.name);
        else
            X509_VERIFY_PARAM_set1_host(vp, cfg.name, 0);
    }
    c->st = ST_TLS;
    return 0;
}

/* returns 1 if the response in rbuf is complete, 0 if more is needed,
 * -1 on parse error. Sets *status, *close_after. */
static int resp_complete(struct conn *c, int *status, int *close_after, int *hdr_ok)
{
    char *p = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!p) return c->rlen >= (int)(size_t)rbufsz - 1 ? -1 : 0;
    int hlen = (int)(p - c->rbuf) + 4;
    if (c->rlen < 12 || memcmp(c->rbuf, "HTTP/1.", 7)) return -1;
    *status = atoi(c->rbuf + 9);
    long clen = -1;
    int chunked = 0;
    *close_after = 0;
    *hdr_ok = 1;
    /* case-insensitive header scan within header block */
    char save = c->rbuf[hlen];
    c->rbuf[hlen] = 0;
    char *h = strcasestr(c->rbuf, "\r\ncontent-length:");
    if (h) clen = strtol(h + 17, NULL, 10);
    h = strcasestr(c->rbuf, "\r\ntransfer-encoding:");
    if (h && strcasestr(h, "chunked") && strcasestr(h, "chunked") < strstr(h + 2, "\r\n")) chunked = 1;
    h = strcasestr(c->rbuf, "\r\nconnection:");
    if (h) {
        char *eol = strstr(h + 2, "\r\n");
        char *cl = strcasestr(h, "close");
        if (cl && cl < eol) *close_after = 1;
    }
    if (!strncmp(c->rbuf, "HTTP/1.0", 8)) {
        char *ka = strcasestr(c->rbuf, "keep-alive");
        if (!ka) *close_after = 1;
    }
    if (c->expect && !strcasestr(c->rbuf, c->expect) && !(c->alt && strcasestr(c->rbuf, c->alt))) *hdr_ok = 0;
    c->rbuf[hlen] = save;
    if (chunked) {
        int off = hlen;
        for (;;) {
            char *eol = memmem(c->rbuf + off, c->rlen - off, "\r\n", 2);
            if (!eol) return 0;
            long sz = strtol(c->rbuf + off, NULL, 16);
            off = (int)(eol - c->rbuf) + 2;
            if (sz == 0) {
                /* expect final CRLF (no trailers supported) */
                return c->rlen >= off + 2 ? 1 : 0;
            }
            if (c->rlen < off + sz + 2) return 0;
            off += sz + 2;
        }
    }
    if (clen < 0) clen = 0; /* no body for our purposes */
    return c->rlen >= hlen + clen ? 1 : 0;
}

static int want_more(void)
{
    return now_us() < t_end && completed_total < cfg.maxreq && n_issued < cfg.maxreq;
}

/* the handle token at p, if any: its length; *conn = it is CONN_HANDLE_TOKEN */
static size_t tpl_token(const char *p, int *conn)
{
    *conn = !strncmp(p, CONN_HANDLE_TOKEN, strlen(CONN_HANDLE_TOKEN));
    if (*conn) return strlen(CONN_HANDLE_TOKEN);
    return strncmp(p, HANDLE_TOKEN, strlen(HANDLE_TOKEN)) ? 0 : strlen(HANDLE_TOKEN);
}

static size_t tpl_count(const char *tpl)
{
    size_t k = 0, n;
    int conn;
    for (const char *p = tpl; p && *p; p += n ? n : 1)
        if ((n = tpl_token(p, &conn))) k++;
    return k;
}

/* bytes tpl needs once filled in (NUL included); 0 when it has no token */
static size_t tpl_cap(const char *tpl)
{
    size_t k = tpl ? tpl_count(tpl) : 0;
    return k ? strlen(tpl) + k * handle_maxlen + 1 : 0;
}

/* tpl with HANDLE_TOKEN -> h, CONN_HANDLE_TOKEN -> h0 into out (tpl_cap bytes); length */
static int tpl_fill(const char *tpl, const char *h, const char *h0, char *out)
{
    size_t o = 0, n;
    int conn;
    for (const char *p = tpl; *p; p += n ? n : 1) {
        if ((n = tpl_token(p, &conn))) {
            const char *v = conn ? h0 : h;
            memcpy(out + o, v, strlen(v));
            o += strlen(v);
        } else
            out[o++] = *p;
    }
    out[o] = 0;
    return (int)o;
}

/* --handles FILE: one handle per line (blank lines skipped); never printed */
static int handles_load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "lg: cannot open --handles file: %s\n", strerror(errno)); return -1; }
    long cap = 1024;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    handles = malloc(sizeof *handles * (size_t)cap);
    while (handles && (n = getline(&line, &lcap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        if (nhandles == HANDLES_MAX) break;
        if (nhandles == cap) {
            char **nh = realloc(handles, sizeof *handles * (size_t)(cap *= 2));
            if (!nh) { free(handles); handles = NULL; break; }
            handles = nh;
        }
        if (!(handles[nhandles++] = strdup(line))) { handles = NULL; break; }
        if ((size_t)n > handle_maxlen) handle_maxlen = (size_t)n;
    }
    free(line);
    fclose(f);
    if (!handles) { fprintf(stderr, "lg: out of memory reading --handles\n"); return -1; }
    if (!nhandles) { fprintf(stderr, "lg: --handles file is empty\n"); return -1; }
    return 0;
}

/* per-connection request/expect buffers for --handles; else the shared ones */
static int conn_buffers(struct conn *c)
{
    size_t ecap = tpl_cap(cfg.expect), acap = tpl_cap(cfg.expect_alt);
    c->req = reqbuf;
    c->reqlen = reqlen;
    c->expect = cfg.expect;
    c->alt = cfg.expect_alt;
    if (!nhandles) return 0;
    if (!(c->reqown = malloc(tpl_cap(reqbuf)))) return -1;
    /* filled by send_request before the first response is checked */
    if (ecap && !(c->expown = calloc(1, ecap))) return -1;
    if (acap && !(c->altown = calloc(1, acap))) return -1;
    if (c->expown) c->expect = c->expown;
    if (c->altown) c->alt = c->altown;
    return 0;
}

static void record(uint64_t us)
{
    if (!measuring) return;
    completed_total++;
    if (nlat < cfg.maxreq) lat[nlat++] = us > 0xffffffffu ? 0xffffffffu : (uint32_t)us;
}

static void send_request(struct conn *c)
{
    if (nhandles) {
        const char *h = handles[next_handle++ % nhandles];
        if (!c->h0) c->h0 = h;
        c->reqlen = tpl_fill(reqbuf, h, c->h0, c->reqown);
        c->req = c->reqown;
        if (c->expown) tpl_fill(cfg.expect, h, c->h0, c->expown);
        if (c->altown) tpl_fill(cfg.expect_alt, h, c->h0, c->altown);
    }
    if (measuring) n_issued++;
    c->st = ST_REQW;
    c->woff = 0;
    c->rlen = 0;
    c->t_req = now_us();
}

static void drive(struct conn *c)
{
    for (;;) {
        switch (c->st) {
        case ST_IDLE:
            return;
        case ST_HELD: {
            /* held idle connection: anything readable is the peer closing it */
            char b[512];
            int r = SSL_read(c->ssl, b, sizeof b);
            if (r > 0) { if (measuring) n_err_io++; note_err("unexpected data on held connection"); }
            else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            }
            if (measuring) n_closed_by_peer++;
            n_held--;
            ERR_clear_error();
            conn_close(c, 0);
            c->retry_at = UINT64_MAX; /* not reopened */
            return;
        }
        case ST_TCP: {
            int err = 0;
            socklen_t l = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
            if (err == EINPROGRESS || err == EALREADY) return;
            if (err) {
                errno = err;
                fail(c, &n_err_conn, "connect");
                return;
            }
            /* writable => connected (or error caught above) */
            if (cfg.connect_target) {
                c->st = ST_PXW;
                c->woff = 0;
            } else
                tls_begin(c);
            break;
        }
        case ST_PXW: {
            ssize_t n = write(c->fd, pxbuf + c->woff, pxlen - c->woff);
            if (n < 0) {
                if (errno == EAGAIN) { set_ev(c, EPOLLOUT); return; }
                if (errno == ENOTCONN) { set_ev(c, EPOLLOUT); return; }
                fail(c, &n_err_proxy, "proxy write");
                return;
            }
            c->woff += n;
            if (c->woff == pxlen) {
                c->st = ST_PXR;
                c->rlen = 0;
                set_ev(c, EPOLLIN);
            }
            break;
        }
        case ST_PXR: {
            /* read byte-wise-safe: read what is there; proxy must not send
             * TLS data before we speak, so anything past CRLFCRLF is an error */
            ssize_t n = read(c->fd, c->rbuf + c->rlen, (size_t)rbufsz - 1 - c->rlen);
            if (n < 0) {
                if (errno == EAGAIN) { set_ev(c, EPOLLIN); return; }
                fail(c, &n_err_proxy, "proxy read");
                return;
            }
            if (n == 0) { errno = 0; fail(c, &n_err_proxy, "proxy closed during CONNECT"); return; }
            c->rlen += n;
            char *p = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
            if (!p) {
                if (c->rlen >= (int)(size_t)rbufsz - 1) { errno = 0; fail(c, &n_err_proxy, "proxy hdr too big"); return; }
                set_ev(c, EPOLLIN);
                return;
            }
            if (c->rlen < 12 || c->rbuf[9] != '2') {
                errno = 0;
                char m[64];
                snprintf(m, sizeof m, "CONNECT status %.3s", c->rlen >= 12 ? c->rbuf + 9 : "???");
                fail(c, &n_err_proxy, m);
                return;
            }
            c->rlen = 0;
            tls_begin(c);
            break;
        }
        case ST_TLS: {
            int r = SSL_connect(c->ssl);
            if (r == 1) {
                if (measuring) n_tls++;
                if (!tls_info[0])
                    snprintf(tls_info, sizeof tls_info, "%s %s", SSL_get_version(c->ssl),
                             SSL_get_cipher_name(c->ssl));
                send_request(c);
                break;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) { set_ev(c, EPOLLIN); return; }
            if (e == SSL_ERROR_WANT_WRITE) { set_ev(c, EPOLLOUT); return; }
            errno = 0;
            fail(c, &n_err_tls, "tls handshake");
            return;
        }
        case ST_REQW: {
            int r = SSL_write(c->ssl, c->req + c->woff, c->reqlen - c->woff);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ) { set_ev(c, EPOLLIN); return; }
                if (e == SSL_ERROR_WANT_WRITE) { set_ev(c, EPOLLOUT); return; }
                errno = 0;
                fail(c, &n_err_io, "ssl write");
                return;
            }
            c->woff += r;
            if (c->woff == c->reqlen) {
                c->st = ST_RESPR;
                c->rlen = 0;
            }
            break;
        }
        case ST_RESPR: {
            int r = SSL_read(c->ssl, c->rbuf + c->rlen, (size_t)rbufsz - 1 - c->rlen);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ) { set_ev(c, EPOLLIN); return; }
                if (e == SSL_ERROR_WANT_WRITE) { set_ev(c, EPOLLOUT); return; }
                if (c->rlen == 0 && c->reqs > 0 && !cfg.mode_new) {
                    /* keep-alive connection closed by peer between requests */
                    if (measuring) n_closed_by_peer++;
                    ERR_clear_error();
                    conn_close(c, 0);
                    return;
                }
                errno = 0;
                fail(c, &n_err_io, "ssl read");
                return;
            }
            c->rlen += r;
            int status = 0, close_after = 0, hdr_ok = 1;
            int k = resp_complete(c, &status, &close_after, &hdr_ok);
            if (k < 0) { errno = 0; fail(c, &n_err_io, "bad response"); return; }
            if (k == 0) break; /* keep reading */
            uint64_t t = now_us();
            c->reqs++;
            if (measuring) rx_bytes += c->rlen;
            if (status != 200 && measuring) {
                n_non200++;
                if (!first_err[0]) snprintf(first_err, sizeof first_err, "HTTP status %d", status);
            }
            if (!hdr_ok && measuring) {
                n_expect_fail++;
                if (!first_err[0]) snprintf(first_err, sizeof first_err, "expected header text missing");
            }
            record(cfg.mode_new || cfg.mode_idle ? t - c->t_conn : t - c->t_req);
            if (cfg.mode_idle) {
                if (status == 200 && hdr_ok && !close_after) {
                    c->st = ST_HELD;
                    n_held++;
                    set_ev(c, EPOLLIN);
                } else
                    conn_close(c, 100000); /* refused: retry slowly, never hold it */
                return;
            }
            if (cfg.mode_new || close_after) {
                SSL_shutdown(c->ssl); /* best effort close_notify */
                conn_close(c, 0);
                if (want_more()) conn_start(c);
                return;
            }
            if (!want_more()) { conn_close(c, 0); return; }
            send_request(c);
            break;
        }
        }
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: lg --addr IP:PORT [--connect HOST:PORT] --name TLSNAME [--host H]\n"
            "          [--path /] [--cafile CA.pem] [-H 'Hdr: v']... [--expect TEXT]\n"
            "          [-c conns] [-d seconds] [-w warmup_s] [-n maxreq] [--mode ka|new|idle]\n"
            "          [--ramp K] [--hold S] [--hold-until FILE]   (idle mode)\n"
            "          [--handles FILE] [--expect-alt TEXT]   (@HANDLE@: next handle per request,\n"
            "          @CONN_HANDLE@: the connection's first, in -H/--expect/--expect-alt)\n");
    exit(2);
}

static void on_alarm(int s)
{
    (void)s;
    static const char m[] = "{\"error\":\"hard time limit hit\"}\n";
    write(1, m, sizeof m - 1);
    _exit(3);
}

static int cmpu32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *addr = NULL;
    cfg.path = "/";
    cfg.nconns = 1;
    cfg.duration = 10;
    cfg.warmup = 1;
    cfg.maxreq = 20000000;
    static struct option lo[] = {{"addr", 1, 0, 'a'},   {"connect", 1, 0, 'C'}, {"name", 1, 0, 'N'},
                                 {"host", 1, 0, 'h'},   {"path", 1, 0, 'p'},    {"cafile", 1, 0, 'k'},
                                 {"expect", 1, 0, 'e'}, {"mode", 1, 0, 'm'},    {"ramp", 1, 0, 'R'},
                                 {"hold", 1, 0, 'L'},   {"hold-until", 1, 0, 'U'},
                                 {"handles", 1, 0, 'F'}, {"expect-alt", 1, 0, 'E'}, {0, 0, 0, 0}};
    int o;
    size_t hl = 0;
    while ((o = getopt_long(argc, argv, "a:C:N:h:p:k:e:m:H:c:d:w:n:", lo, NULL)) != -1) {
        switch (o) {
        case 'a': addr = optarg; break;
        case 'C': cfg.connect_target = optarg; break;
        case 'N': cfg.name = optarg; break;
        case 'h': cfg.host = optarg; break;
        case 'p': cfg.path = optarg; break;
        case 'k': cfg.cafile = optarg; break;
        case 'e': cfg.expect = optarg; break;
        case 'm':
            cfg.mode_new = !strcmp(optarg, "new");
            cfg.mode_idle = !strcmp(optarg, "idle");
            if (!cfg.mode_new && !cfg.mode_idle && strcmp(optarg, "ka")) usage();
            break;
        case 'R': cfg.ramp = atoi(optarg); break;
        case 'L': cfg.hold = atof(optarg); break;
        case 'U': cfg.hold_until = optarg; break;
        case 'F': cfg.handles = optarg; break;
        case 'E': cfg.expect_alt = optarg; break;
        case 'H': hl += snprintf(cfg.hdrs + hl, sizeof cfg.hdrs - hl, "%s\r\n", optarg); break;
        case 'c': cfg.nconns = atoi(optarg); break;
        case 'd': cfg.duration = atof(optarg); break;
        case 'w': cfg.warmup = atof(optarg); break;
        case 'n': cfg.maxreq = atol(optarg); break;
        default: usage();
        }
    }
    if (!addr || !cfg.name || cfg.nconns < 1 || cfg.duration <= 0 || cfg.duration > 600) usage();
    if (cfg.maxreq < 1 || cfg.maxreq > 100000000) usage();
    if (cfg.nconns > 100000 || cfg.hold < 0 || cfg.hold > 600) usage();
    if (cfg.ramp < 1) cfg.ramp = 64;
    if (cfg.mode_idle) {
        rbufsz = 4096;      /* one small response per connection */
        cfg.warmup = 0;
        if (cfg.maxreq < cfg.nconns) cfg.maxreq = cfg.nconns;
    }
    {   /* many connections: raise the descriptor limit to the hard limit */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    char ip[64];
    int port;
    if (sscanf(addr, "%63[^:]:%d", ip, &port) != 2) usage();
    cfg.addr.sin_family = AF_INET;
    cfg.addr.sin_port = htons(port);
    if (inet_pton(AF_INET, ip, &cfg.addr.sin_addr) != 1) usage();
    /* loopback only: this tool must never generate load off-box */
    if ((ntohl(cfg.addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "lg: refusing non-loopback address %s\n", ip);
        return 2;
    }
    if (cfg.handles && handles_load(cfg.handles) < 0) return 2;
    struct in_addr tmp;
    cfg.name_is_ip = inet_pton(AF_INET, cfg.name, &tmp) == 1;
    if (!cfg.host) cfg.host = cfg.name;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)(cfg.duration + cfg.warmup + cfg.hold + 5));

    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    if (cfg.cafile) {
        if (SSL_CTX_load_verify_locations(ctx, cfg.cafile, NULL) != 1) {
            fprintf(stderr, "lg: cannot load %s\n", cfg.cafile);
            return 2;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    reqlen = snprintf(reqbuf, sizeof reqbuf,
                      "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lg/1\r\nAccept: */*\r\n%s%s\r\n",
                      cfg.path, cfg.host, cfg.hdrs, cfg.mode_new ? "Connection: close\r\n" : "");
    if (cfg.connect_target)
        pxlen = snprintf(pxbuf, sizeof pxbuf, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                         cfg.connect_target, cfg.connect_target);

    if (nhandles && !tpl_count(reqbuf)) {
        fprintf(stderr, "lg: --handles needs %s in a -H value\n", HANDLE_TOKEN);
        return 2;
    }
    lat = malloc(sizeof(uint32_t) * (size_t)(cfg.maxreq < 20000000 ? cfg.maxreq : 20000000));
    if (cfg.maxreq > 20000000) cfg.maxreq = 20000000;
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *cs = calloc(cfg.nconns, sizeof *cs);
    if (!cs || !lat) { fprintf(stderr, "lg: out of memory\n"); return 2; }
    for (int i = 0; i < cfg.nconns; i++)
        if (!(cs[i].rbuf = malloc((size_t)rbufsz)) || conn_buffers(&cs[i]) < 0) {
            fprintf(stderr, "lg: out of memory\n");
            return 2;
        }
    uint64_t t_hold_end = 0, t_progress = now_us();
    long last_held = 0;
    uint64_t t0 = now_us();
    t_measure_start = t0 + (uint64_t)(cfg.warmup * 1e6);
    t_end = t_measure_start + (uint64_t)(cfg.duration * 1e6);
    measuring = cfg.warmup <= 0;
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    for (int i = 0; i < cfg.nconns; i++) {
        cs[i].fd = -1;
        if (cfg.mode_idle && i >= cfg.ramp) continue; /* started by the ramp below */
        conn_start(&cs[i]); /* epoll reports EPOLLOUT once connected */
    }
    struct epoll_event evs[256];
    for (;;) {
        uint64_t t = now_us();
        if (!measuring && t >= t_measure_start) {
            measuring = 1;
            t_measure_start = t;
            getrusage(RUSAGE_SELF, &ru0);
        }
        if (cfg.mode_idle) {
            if (n_held > last_held) { last_held = n_held; t_progress = t; }
            if (t_hold_end && t >= t_hold_end) break;
            struct stat hst;
            if (t_hold_end && cfg.hold_until && stat(cfg.hold_until, &hst) == 0) break;
            /* stop ramping when the count has not grown for 5 s (proxy refusing) */
            if (!t_hold_end && (t >= t_end || n_held >= cfg.nconns || t - t_progress > 5000000)) {
                fprintf(stderr, "HELD %ld\n", n_held);
                fflush(stderr);
                t_hold_end = t + (uint64_t)(cfg.hold * 1e6);
                t_end = t; /* no new connections from here on */
            }
        } else if (t >= t_end || completed_total >= cfg.maxreq)
            break;
        else if (!want_more()) { /* -n requests sent: stop once none is in flight */
            int busy = 0;
            for (int i = 0; i < cfg.nconns && !busy; i++) busy = cs[i].st != ST_IDLE;
            if (!busy) break;
        }
        int n = epoll_wait(ep, evs, 256, 5);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->st == ST_IDLE) continue;
            drive(c);
        }
        t = now_us();
        if (cfg.mode_idle) {
            if (t < t_end) {
                int pending = 0;
                for (int i = 0; i < cfg.nconns; i++)
                    if (cs[i].st != ST_IDLE && cs[i].st != ST_HELD) pending++;
                for (int i = 0; i < cfg.nconns && pending < cfg.ramp; i++)
                    if (cs[i].st == ST_IDLE && cs[i].retry_at <= t) {
                        conn_start(&cs[i]);
                        pending++;
                    }
            }
        } else if (want_more())
            for (int i = 0; i < cfg.nconns; i++)
                if (cs[i].st == ST_IDLE && cs[i].retry_at <= t) {
                    conn_start(&cs[i]);
                }
    }
    uint64_t t1 = now_us();
    struct rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);
    double el = (t1 - t_measure_start) / 1e6;
    double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    qsort(lat, nlat, sizeof *lat, cmpu32);
#define PCT(q) (nlat ? lat[(long)((q) * (nlat - 1))] / 1000.0 : -1.0)
    printf("{\"mode\":\"%s\",\"conns\":%d,\"elapsed_s\":%.3f,\"requests\":%ld,\"rps\":%.1f,"
           "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
           "\"tcp_connects\":%ld,\"tls_handshakes\":%ld,\"err_connect\":%ld,\"err_proxy\":%ld,"
           "\"err_tls\":%ld,\"err_io\":%ld,\"non200\":%ld,\"expect_fail\":%ld,\"peer_closed\":%ld,"
           "\"held\":%ld,\"handles\":%ld,\"handle_uses\":%ld,\"rx_bytes\":%lld,\"client_cpu_s\":%.3f,\"tls\":\"%s\","
           "\"first_error\":\"%s\"}\n",
           cfg.mode_idle ? "idle" : cfg.mode_new ? "new" : "ka", cfg.nconns, el, completed_total, completed_total / el, PCT(0.5),
           PCT(0.9), PCT(0.99), PCT(0.999), nlat ? lat[nlat - 1] / 1000.0 : -1.0, n_connects, n_tls,
           n_err_conn, n_err_proxy, n_err_tls, n_err_io, n_non200, n_expect_fail, n_closed_by_peer, n_held, nhandles,
           next_handle, rx_bytes, cpu,
           tls_info, first_err);
    return 0;
}
