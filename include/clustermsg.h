/*
 * clustermsg.h — fleet mode's names and records in Redis (cluster.h is the network side).
 * Pure core: bytes in, bytes out; no sockets, no clocks.
 *
 * Keys and channel (prefix from the policy, default SG_CLUSTER_PREFIX):
 *   <prefix>revocations          hash: field "<kind>:<value>" -> "<unix ts>"
 *   <prefix>revocations:events   channel: "sgr1 <node> <ts> <kind>:<value>"
 * kind is handle | sandbox | credential | key (revoke.h); the value is checked with
 * revoke_value_valid and hex values are lower-cased on decode. A sandbox or credential
 * name may hold spaces and colons: it is always the last thing, after the first ':'.
 *
 * Config strings (policy "cluster.redis"): address "host:port" (port 1..65535) or
 * "unix:/absolute/path"; node and prefix 1..CLUSTERMSG_MAX_NAME of [A-Za-z0-9._:-]
 * (node without ':'); user 1..CLUSTERMSG_MAX_NAME printable characters, no space.
 *
 * Return codes: 0 done, -1 bad input or no room (out is then "" when outlen > 0).
 */
#ifndef SEALGATE_CLUSTERMSG_H
#define SEALGATE_CLUSTERMSG_H

#include <stddef.h>
#include <stdint.h>

#include "revoke.h"
#include "util.h"

/* Longest node name, key prefix or ACL user: names, not documents. */
#define CLUSTERMSG_MAX_NAME	64
/* Longest kind ("credential"). */
#define CLUSTERMSG_MAX_KIND	10
/* Largest field, hash value or message: every part at its bound, with separators. */
#define CLUSTERMSG_MAX_RECORD	(8 + CLUSTERMSG_MAX_NAME + 24 + CLUSTERMSG_MAX_KIND + \
				 REVOKE_MAX_NAME + 8)
/* Message version tag: a later format gets a new tag and old sidecars ignore it. */
#define CLUSTERMSG_TAG		"sgr1"

/* A decoded record; rec.kind and rec.value point into the struct. */
typedef struct clustermsg_rec {
	char kind[CLUSTERMSG_MAX_KIND + 1];
	char value[REVOKE_MAX_NAME + 1];
	char node[CLUSTERMSG_MAX_NAME + 1];	/* messages only; "" for hash entries */
	revoke_record_t rec;
} clustermsg_rec_t;

/* "<prefix>revocations" and "<prefix>revocations:events". */
int clustermsg_revocations_key(const char *prefix, char *out, size_t outlen)
    __attribute__((nonnull(1, 2))) SG_WUR;
int clustermsg_revocations_channel(const char *prefix, char *out, size_t outlen)
    __attribute__((nonnull(1, 2))) SG_WUR;

/* Hash entry: field "<kind>:<value>" and value "<ts>" from a valid record. */
int clustermsg_field_encode(const revoke_record_t *r, char *field, size_t fieldlen,
    char *ts, size_t tslen) __attribute__((nonnull(1, 2, 4))) SG_WUR;
/* A hash entry (bytes, not NUL-terminated) into out. */
int clustermsg_field_decode(const char *field, size_t flen, const char *ts, size_t tslen,
    clustermsg_rec_t *out) __attribute__((nonnull(1, 3, 5))) SG_WUR;

/* Channel message from node and a valid record. */
int clustermsg_msg_encode(const char *node, const revoke_record_t *r, char *out,
    size_t outlen) __attribute__((nonnull(1, 2, 3))) SG_WUR;
int clustermsg_msg_decode(const char *msg, size_t len, clustermsg_rec_t *out)
    __attribute__((nonnull(1, 3))) SG_WUR;

/* Config checks: 1 valid, 0 not. */
int clustermsg_address_valid(const char *s) __attribute__((nonnull(1)));
int clustermsg_node_valid(const char *s) __attribute__((nonnull(1)));
int clustermsg_prefix_valid(const char *s) __attribute__((nonnull(1)));
int clustermsg_user_valid(const char *s) __attribute__((nonnull(1)));

/*
 * Split a valid address: *unix_path points into s after "unix:" (host "" and port 0), or
 * host (copied, brackets of "[v6]" removed) and *port are set and *unix_path is NULL.
 */
int clustermsg_address_split(const char *s, char *host, size_t hostlen, int *port,
    const char **unix_path) __attribute__((nonnull(1, 2, 4, 5))) SG_WUR;

#endif
