/*
 * nftrules.h — the nftables ruleset that sends a sandbox interface's outbound HTTPS to
 * sealgate's transparent listener (`sealgate transparent rules`).
 *
 * Pure core: text in, text out. nftrules_render writes into out (NUL-terminated):
 *
 *   table inet sealgate {
 *     chain prerouting {
 *       type nat hook prerouting priority dstnat; policy accept;
 *       iifname "IF" ip daddr PROXY-IP return              (never the proxy itself)
 *       iifname "IF" ip daddr { 169.254.169.254, 169.254.170.2 } return   (metadata)
 *       iifname "IF" tcp dport 443 dnat ip to PROXY-IP:PORT
 *     }
 *   }
 *
 * (ip6 / ip6 daddr for an IPv6 proxy address; the metadata exclusion is IPv4 only since
 * those addresses are.) Only port 443: the transparent listener takes TLS only.
 * Returns 0, or -1 with err set: an interface name that is not 1..15 of [A-Za-z0-9._-],
 * a proxy that is not IP:port / [IPv6]:port with port 1..65535, or out too small.
 */
#ifndef SEALGATE_NFTRULES_H
#define SEALGATE_NFTRULES_H

#include <stddef.h>

#include "util.h"

/* IFNAMSIZ - 1: the longest Linux interface name. */
#define NFTRULES_IFNAME_MAX	15
/* Metadata addresses sealgate answers on itself (EC2/IMDS and AWS container
 * credentials): redirecting them would send them to the TLS-only listener. */
#define NFTRULES_METADATA_V4	"169.254.169.254, 169.254.170.2"
/* The port redirected. */
#define NFTRULES_PORT		443

int nftrules_render(const char *ifname, const char *proxy, char *out, size_t outlen,
    char *err, size_t errlen) SG_NONNULL SG_WUR;

#endif
