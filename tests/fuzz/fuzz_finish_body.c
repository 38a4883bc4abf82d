/*
 * fuzz_finish_body.c — libFuzzer harness for the held-body finish (swap_finish_body):
 * the leak scan, the body's handles unsealed and authorised, the plain-http check, the
 * rewrite and the HMAC signature, on a real keyring, handle cache and rate table.
 *
 * Input: one flags byte (bit 0: the upstream is TLS; bit 1: the plan already signs with
 * the hmac credential; bit 2: the request goes to api.test instead of body.test), then
 * the body. In the body, byte 0x01 becomes a valid handle of the body credential, 0x02
 * one of the bearer credential, 0x03 the body credential's placeholder.
 *
 * Invariants: 0 means no refusal in the plan, and the bytes that would leave (the
 * rewritten body, else the body) hold no valid handle; a body credential's handle that
 * was let through was replaced by its secret; a signed plan has the signature edit.
 * -1 means a refusal status and code and nothing to send.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "handle.h"
#include "handlecache.h"
#include "http.h"
#include "plan.h"
#include "policy.h"
#include "ratelimit.h"
#include "seal.h"
#include "swap.h"
#include "secmem.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW	1700000000
#define FUZZ_BODY_MAX	(64 * 1024)
#define BOD_SECRET	"bod-SECRET-value"
#define PLACEHOLDER	"{{BOD}}"

static const char fuzz_policy[] =
    "{\"limits\": {\"failed_handles\": 0},"
    " \"credentials\": {"
    "  \"bod\": {\"secret\": {\"value\": \"" BOD_SECRET "\"},"
    "    \"inject\": {\"type\": \"body\", \"placeholder\": \"" PLACEHOLDER "\"},"
    "    \"hosts\": [\"body.test\"]},"
    "  \"bear\": {\"secret\": {\"value\": \"bear-SECRET-value\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\", \"body.test\"]},"
    "  \"mac\": {\"secret\": {\"value\": \"mac-key\"},"
    "    \"inject\": {\"type\": \"hmac\"}, \"hosts\": [\"api.test\", \"body.test\"]}},"
    " \"sandboxes\": {"
    "  \"sb-1\": {\"addresses\": [\"127.0.0.2/32\"], \"credentials\": [\"bod\", \"bear\", "
    "\"mac\"]}}}";

static const char fuzz_head[] = "POST /v1 HTTP/1.1\r\nHost: body.test\r\n\r\n";

static struct {
	policy_t *pol;
	seal_keyring_t *kr;
	handlecache_t *hc;
	ratelimit_t *rl;
	char *hbod, *hbear;
	http_head_t head;
	struct sockaddr_in peer;
	const policy_credential_t *mac;
} F;

static char *
fuzz_mint(const char *cred)
{
	handle_claims_t c;
	char *text = NULL;

	memset(&c, 0, sizeof(c));
	c.cred = (char *)cred;
	c.sb = (char *)"sb-1";
	c.iat = FUZZ_NOW - 60;
	c.exp = FUZZ_NOW + 900;
	if (handle_mint(seal_keyring_current(F.kr), &c, &text) != HANDLE_OK)
		abort();
	return text;
}

static void
fuzz_setup(void)
{
	policy_errors_t errs;
	http_parser p;
	const char *why = NULL;
	uint8_t seed[32];

	if (sodium_init() < 0)
		abort();
	F.pol = policy_load_buffer("fuzz-finish.json", fuzz_policy, strlen(fuzz_policy), &errs);
	policy_errors_free(&errs);
	memset(seed, 7, sizeof(seed));
	F.kr = seal_keyring_new();
	if (F.pol == NULL || F.kr == NULL || seal_keyring_add(F.kr, seal_key_from_seed(seed)) < 0)
		abort();
	F.hc = handlecache_new(64);
	F.rl = ratelimit_new(4096);
	F.hbod = fuzz_mint("bod");
	F.hbear = fuzz_mint("bear");
	F.mac = policy_credential_find(F.pol, "mac");
	http_parser_init(&p, HTTP_REQUEST);
	if (F.hc == NULL || F.rl == NULL || F.mac == NULL || http_head_parse(&p, fuzz_head,
	    strlen(fuzz_head), &F.head, HTTP_GET, &why) != 0)
		abort();
	F.peer.sin_family = AF_INET;
	F.peer.sin_addr.s_addr = htonl(0x7f000002);
}

/* The body with the marker bytes expanded; *nbod counts body-credential handles. */
static size_t
fuzz_body(const uint8_t *data, size_t size, char *out, size_t *nbod)
{
	size_t n = 0;

	*nbod = 0;
	for (size_t i = 0; i < size; i++) {
		const char *ins = NULL;
		size_t il;

		if (data[i] == 1) {
			ins = F.hbod;
			(*nbod)++;
		} else if (data[i] == 2)
			ins = F.hbear;
		else if (data[i] == 3)
			ins = PLACEHOLDER;
		il = ins ? strlen(ins) : 1;
		if (n + il > FUZZ_BODY_MAX)
			break;
		if (ins)
			memcpy(out + n, ins, il);
		else
			out[n] = (char)data[i];
		n += il;
	}
	return n;
}

static void
fuzz_check(int rc, const plan_t *p, const char *sent, size_t len, size_t nbod, bool signs)
{
	if (rc != 0) {
		if (p->status < 400 || p->status > 599 || p->code == NULL)
			abort();
		return;
	}
	if (p->status != 0)
		abort();
	if (memmem(sent, len, F.hbod, strlen(F.hbod)) != NULL ||
	    memmem(sent, len, F.hbear, strlen(F.hbear)) != NULL)
		abort();	/* a handle would have left */
	if (nbod > 0 && memmem(sent, len, BOD_SECRET, strlen(BOD_SECRET)) == NULL)
		abort();	/* let through but not replaced */
	if (signs && p->edits.nadd == 0)
		abort();	/* signed plan without its signature */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char body[FUZZ_BODY_MAX];
	swap_env_t env;
	swap_req_t req;
	plan_t plan;
	char *out = NULL;
	size_t len, outlen = 0, nbod;
	bool tls, signs;
	int rc;

	if (F.pol == NULL)
		fuzz_setup();
	if (size == 0)
		return 0;
	tls = data[0] & 1;
	signs = (data[0] & 2) != 0;
	len = fuzz_body(data + 1, size - 1, body, &nbod);
	memset(&env, 0, sizeof(env));
	env.policy = F.pol;
	env.keyring = F.kr;
	env.cache = F.hc;
	env.rl = F.rl;
	env.now = FUZZ_NOW;
	env.now_ms = 1000000;
	memset(&req, 0, sizeof(req));
	req.head = &F.head;
	req.target = "/v1";
	req.host = (data[0] & 4) ? "api.test" : "body.test";
	req.port = 443;
	req.peer = (const struct sockaddr *)&F.peer;
	plan_init(&plan);
	if (signs) {
		plan.hmac_cred = F.mac;
		plan.buffer_body = true;
	}
	rc = swap_finish_body(&env, &req, tls, &plan, body, len, &out, &outlen);
	if (rc != 0 && out != NULL)
		abort();
	fuzz_check(rc, &plan, out ? out : body, out ? outlen : len, nbod, signs);
	secmem_wipe_free(out);
	plan_free(&plan);
	return 0;
}
