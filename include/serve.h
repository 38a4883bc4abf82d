/*
 * serve.h — the startup step of `sealgate serve` (src/cmd_serve.c) that creates missing
 * key material. Only cmd_serve.c calls it. No test starts a server in-process: the
 * end-to-end suites run the sealgate binary (tests/e2e/sgtest.py `Sealgate`).
 */
#ifndef SEALGATE_SERVE_H
#define SEALGATE_SERVE_H

#include <stddef.h>

#include "policy.h"

/*
 * Create what the policy's `keys` and `admin.token` name but is missing: the seal key
 * pair, the CA (ca.key + ca.crt in one folder), the admin token (0600). Says what it
 * created on stderr. Returns 0, or -1 with err set.
 */
int serve_ensure_keys(const policy_t *p, char *err, size_t errlen);

#endif
