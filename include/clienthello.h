/*
 * clienthello.h — find the server name (SNI, RFC 6066 section 3) in the first bytes a
 * TLS client sends, without consuming them: the transparent listener peeks at what is
 * buffered, asks this codec, and hands the same bytes on untouched.
 *
 * Pure core: no sockets, no clocks, no OpenSSL. State is a clienthello_t the caller
 * owns (no allocation; it holds the handshake bytes gathered from the records).
 *
 * clienthello_parse is given every byte received so far (a prefix of the stream, from
 * its first byte) and re-reads it whole on each call, so "need more" followed by a
 * longer prefix is how it is fed incrementally. It reads handshake records (type 22)
 * until one ClientHello message is complete — the message may span records — and
 * answers:
 *   CLIENTHELLO_SNI     a host_name was found: ch->sni (NUL-terminated, lower-case,
 *                       letters, digits, '-', '_', '.'; 1..CLIENTHELLO_SNI_MAX bytes)
 *   CLIENTHELLO_NO_SNI  a complete, well-formed ClientHello with no server_name
 *   CLIENTHELLO_MORE    a well-formed prefix; call again with more bytes
 *   CLIENTHELLO_NOT_TLS anything else: first byte not 0x16, a malformed record or
 *                       message, a server_name that is not a host name, or no complete
 *                       ClientHello within CLIENTHELLO_PEEK_MAX bytes
 * Every prefix of a stream answers either MORE or what the whole stream answers: bytes
 * after a complete ClientHello are never read.
 */
#ifndef SEALGATE_CLIENTHELLO_H
#define SEALGATE_CLIENTHELLO_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* The most bytes of records read before deciding: a ClientHello with post-quantum key
 * shares is about 1.8 KiB; 16 KiB (one full record) leaves room without letting a
 * client hold a connection's buffer open with an endless hello. */
#define CLIENTHELLO_PEEK_MAX	16384
/* DNS: a host name is at most 253 characters (255 octets on the wire). */
#define CLIENTHELLO_SNI_MAX	253
/* TLS record header: type, version, length. */
#define CLIENTHELLO_REC_HDR	5
/* TLS 1.x records carry at most 2^14 bytes of plaintext (RFC 8446 section 5.1). */
#define CLIENTHELLO_REC_MAX	16384

enum clienthello_res {
	CLIENTHELLO_SNI,
	CLIENTHELLO_NO_SNI,
	CLIENTHELLO_MORE,
	CLIENTHELLO_NOT_TLS,
};

typedef struct clienthello {
	uint8_t hs[CLIENTHELLO_PEEK_MAX];	/* handshake bytes gathered from records */
	size_t hslen;
	char sni[CLIENTHELLO_SNI_MAX + 1];
} clienthello_t;

enum clienthello_res clienthello_parse(clienthello_t *ch, const uint8_t *buf, size_t len)
    SG_NONNULL;

/* A printable name for a result ("sni", "no_sni", "more", "not_tls"). */
const char *clienthello_res_name(enum clienthello_res r);

#endif
