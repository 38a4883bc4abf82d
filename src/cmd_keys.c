/* cmd_keys.c — keygen, ca init, seal, unseal, handle mint. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "ca.h"
#include "cli.h"
#include "defaults.h"
#include "gitpush.h"
#include "handle.h"
#include "mintreq.h"
#include "policy.h"
#include "registry.h"
#include "seal.h"
#include "secmem.h"

/* Largest plaintext whose sealed token still fits SG_TOKEN_MAX_LEN base64 characters. */
#define CLI_SEAL_MAX_PLAIN  (SG_TOKEN_MAX_LEN / 4 * 3 - SEAL_OVERHEAD)
/* Largest token or handle read from stdin (the longer of the two, plus whitespace). */
#define CLI_TOKEN_MAX_READ  (SG_TOKEN_MAX_LEN + 64)

/* JSON object keys whose string values unseal never prints. */
static const char *const cli_secret_keys[] = {
	"token", "key", "secret", "access_token", "refresh_token", "password", "value",
};

/* --- small helpers -------------------------------------------------------------------- */

static int
cli_usage_err(const char *cmd, const char *usage, const char *what, const char *arg)
{
	fprintf(stderr, "sealgate %s: %s%s%s\nusage: %s\n", cmd, what, arg ? " " : "",
	    arg ? arg : "", usage);
	return CLI_USAGE;
}

static int
cli_fail(const char *cmd, const char *msg)
{
	fprintf(stderr, "sealgate %s: %s\n", cmd, msg);
	return CLI_FAIL;
}

/* jansson allocations are wipe memory: parsed secrets do not linger in the heap. */
static void
cli_json_scrubbing(void)
{
	json_set_alloc_funcs(secmem_wipe_alloc, secmem_wipe_free);
}

/* Read all of stdin (at most max bytes) into guarded memory. 0, or -1 with err set. */
static int
cli_read_stdin(size_t max, char **out, size_t *outlen, char *err, size_t errlen)
{
	char *buf = secmem_guarded_alloc(max + 2);
	size_t got = 0;
	ssize_t r;

	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (got <= max && (r = read(STDIN_FILENO, buf + got, max + 1 - got)) != 0) {
		if (r < 0) {
			snprintf(err, errlen, "cannot read stdin");
			secmem_guarded_free(buf);
			return -1;
		}
		got += (size_t)r;
	}
	if (got > max) {
		snprintf(err, errlen, "input larger than %zu bytes", max);
		secmem_guarded_free(buf);
		return -1;
	}
	buf[got] = '\0';
	*out = buf;
	*outlen = got;
	return 0;
}

/* RFC 3339 UTC time of a unix timestamp into out (at least 32 bytes). */
static void
cli_format_time(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "%lld", (long long)t);
}

static int
cli_is_secret_key(const char *k)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(cli_secret_keys); i++)
		if (strcmp(k, cli_secret_keys[i]) == 0)
			return 1;
	return 0;
}

/* Zero a jansson string in place (its buffer is owned by the value). */
static void
cli_json_zero_string(json_t *s)
{
	sodium_memzero((char *)json_string_value(s), json_string_length(s));
}

/* Replace every string value under a secret key by "[redacted, N bytes]", recursively. */
static void
cli_json_redact(json_t *j)
{
	json_t *v;
	size_t i;
	void *it;

	if (json_is_array(j)) {
		for (i = 0; i < json_array_size(j); i++)
			cli_json_redact(json_array_get(j, i));
		return;
	}
	for (it = json_object_iter(j); it != NULL; it = json_object_iter_next(j, it)) {
		v = json_object_iter_value(it);
		if (json_is_string(v) && cli_is_secret_key(json_object_iter_key(it))) {
			size_t n = json_string_length(v);

			cli_json_zero_string(v);
			json_object_iter_set_new(j, it, json_sprintf("[redacted, %zu bytes]", n));
		} else
			cli_json_redact(v);
	}
}

static void
cli_json_print(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
}

/* --- keygen --------------------------------------------------------------------------- */

static const char keygen_usage[] = "sealgate keygen --out DIR [--force]";

int
cmd_keygen(int argc, char **argv)
{
	const char *dir = NULL;
	char err[512], pubhex[2 * SEAL_PK_LEN + 1];
	seal_key_t *key;
	int force = 0, m;

	if (cli_wants_help(argc, argv)) {
		printf("usage: %s\n  Create DIR/seal.key (X25519 private key, hex, mode 0600) and\n"
		    "  DIR/seal.pub (public key, hex): tokenizer's OPEN_KEY and SEAL_KEY formats.\n"
		    "  --force replaces an existing key pair.\n", keygen_usage);
		return CLI_OK;
	}
	for (int i = 1; i < argc; i++) {
		if ((m = cli_opt(argc, argv, &i, "--out", &dir)) < 0)
			return cli_usage_err(argv[0], keygen_usage, "missing value for", "--out");
		else if (m == 0 && strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (m == 0)
			return cli_usage_err(argv[0], keygen_usage, "unexpected argument", argv[i]);
	}
	if (dir == NULL)
		return cli_usage_err(argv[0], keygen_usage, "--out DIR is required", NULL);
	if ((key = seal_keygen_files(dir, force, err, sizeof(err))) == NULL)
		return cli_fail(argv[0], err);
	util_hex_encode(key->pk, SEAL_PK_LEN, pubhex);
	printf("key id: %s\npublic key: %s\nwrote %s/%s (0600) and %s/%s\n", key->id, pubhex,
	    dir, SEAL_KEY_FILE, dir, SEAL_PUB_FILE);
	seal_key_free(key);
	return CLI_OK;
}

/* --- ca init -------------------------------------------------------------------------- */

static const char ca_usage[] = "sealgate ca init --dir DIR [--force]";

static int
ca_print(const char *cmd, const char *dir)
{
	char crt[4096], key[4096], err[512];
	EVP_PKEY *pkey;
	X509 *x;

	snprintf(crt, sizeof(crt), "%s/%s", dir, CA_CERT_FILE);
	snprintf(key, sizeof(key), "%s/%s", dir, CA_KEY_FILE);
	if (ca_load(crt, key, &x, &pkey, err, sizeof(err)) < 0)
		return cli_fail(cmd, err);
	printf("wrote %s and %s (0600)\nsubject: ", crt, key);
	X509_NAME_print_ex_fp(stdout, X509_get_subject_name(x), 0,
	    XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ);
	printf("\n");
	X509_free(x);
	EVP_PKEY_free(pkey);
	return CLI_OK;
}

int
cmd_ca(int argc, char **argv)
{
	const char *dir = NULL;
	char err[512];
	int force = 0, m;

	if (cli_wants_help(argc, argv)) {
		printf("usage: %s\n  Create the interception CA: DIR/ca.key (ECDSA P-256, PKCS#8 PEM,\n"
		    "  mode 0600) and DIR/ca.crt (valid %d days). --force replaces them.\n",
		    ca_usage, SG_CA_VALID_DAYS);
		return CLI_OK;
	}
	if (argc < 2 || strcmp(argv[1], "init") != 0)
		return cli_usage_err(argv[0], ca_usage, "unknown subcommand",
		    argc < 2 ? "(none)" : argv[1]);
	for (int i = 2; i < argc; i++) {
		if ((m = cli_opt(argc, argv, &i, "--dir", &dir)) < 0)
			return cli_usage_err(argv[0], ca_usage, "missing value for", "--dir");
		else if (m == 0 && strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (m == 0)
			return cli_usage_err(argv[0], ca_usage, "unexpected argument", argv[i]);
	}
	if (dir == NULL)
		return cli_usage_err(argv[0], ca_usage, "--dir DIR is required", NULL);
	if (ca_create(dir, force, err, sizeof(err)) < 0)
		return cli_fail(argv[0], err);
	return ca_print(argv[0], dir);
}

/* --- seal ----------------------------------------------------------------------------- */

static const char seal_usage[] = "sealgate seal --pub FILE < secret.json";

/* FILE ending in ".key" is a private key file (its public half is used), else public. */
static seal_key_t *
seal_load_any(const char *path, char *err, size_t errlen)
{
	size_t n = strlen(path);

	if (n >= 4 && strcmp(path + n - 4, ".key") == 0)
		return seal_key_load(path, err, errlen);
	return seal_pub_load(path, err, errlen);
}

/* stdin must hold one JSON object; its bytes are sealed as given. */
static int
seal_check_json(const char *buf, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	int ok = json_is_object(j);

	if (j == NULL)
		snprintf(err, errlen, "stdin: line %d column %d: %s", jerr.line, jerr.column,
		    jerr.text);
	else if (!ok)
		snprintf(err, errlen, "stdin: want a JSON object");
	json_decref(j);
	return ok ? 0 : -1;
}

int
cmd_seal(int argc, char **argv)
{
	const char *pub = NULL;
	char err[512], *buf = NULL, *tok;
	seal_key_t *key;
	size_t len;
	int m;

	if (cli_wants_help(argc, argv)) {
		printf("usage: %s\n  Seal the JSON object on stdin to FILE (seal.pub, or a *.key\n"
		    "  private key file) and print the tokenizer token (standard base64).\n",
		    seal_usage);
		return CLI_OK;
	}
	for (int i = 1; i < argc; i++) {
		if ((m = cli_opt(argc, argv, &i, "--pub", &pub)) < 0)
			return cli_usage_err(argv[0], seal_usage, "missing value for", "--pub");
		else if (m == 0)
			return cli_usage_err(argv[0], seal_usage, "unexpected argument", argv[i]);
	}
	if (pub == NULL)
		return cli_usage_err(argv[0], seal_usage, "--pub FILE is required", NULL);
	if ((key = seal_load_any(pub, err, sizeof(err))) == NULL)
		return cli_fail(argv[0], err);
	cli_json_scrubbing();
	if (cli_read_stdin(CLI_SEAL_MAX_PLAIN, &buf, &len, err, sizeof(err)) < 0 ||
	    seal_check_json(buf, len, err, sizeof(err)) < 0) {
		secmem_guarded_free(buf);
		seal_key_free(key);
		return cli_fail(argv[0], err);
	}
	tok = seal_box(key->pk, buf, len);
	secmem_guarded_free(buf);
	seal_key_free(key);
	if (tok == NULL)
		return cli_fail(argv[0], "out of memory");
	printf("%s\n", tok);
	free(tok);
	return CLI_OK;
}

/* --- unseal --------------------------------------------------------------------------- */

static const char unseal_usage[] = "sealgate unseal --key FILE TOKEN|-";

static json_t *
unseal_list_json(const policy_strlist_t *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

static json_t *
unseal_claims_json(const handle_claims_t *c)
{
	char exp[64];
	json_t *o;

	cli_format_time(c->exp, exp, sizeof(exp));
	bool narrow = c->scope != NULL || c->audience != NULL || c->repos.n > 0 ||
	    c->perms.n > 0;

	o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:I, s:I, s:s}", "key_id", c->key_id,
	    "v", narrow ? HANDLE_VERSION_NARROW : HANDLE_VERSION, "cred", c->cred, "sb", c->sb,
	    "hid", c->hid,
	    "iat", (json_int_t)c->iat, "exp", (json_int_t)c->exp, "expires_at", exp);
	if (o != NULL && c->life_sandbox)
		json_object_set_new(o, "life", json_string(HANDLE_LIFE_SANDBOX));
	if (o != NULL && c->hosts.n)
		json_object_set_new(o, "hosts", unseal_list_json(&c->hosts));
	if (o != NULL && c->methods.n)
		json_object_set_new(o, "methods", unseal_list_json(&c->methods));
	if (o != NULL && c->paths.n)
		json_object_set_new(o, "paths", unseal_list_json(&c->paths));
	if (o != NULL && c->scope != NULL)
		json_object_set_new(o, "scope", json_string(c->scope));
	if (o != NULL && c->audience != NULL)
		json_object_set_new(o, "aud", json_string(c->audience));
	if (o != NULL && c->repos.n)
		json_object_set_new(o, "repos", unseal_list_json(&c->repos));
	if (o != NULL && c->perms.n)
		json_object_set_new(o, "perms", unseal_list_json(&c->perms));
	return o;
}

/* The keyring takes over key. */
static int
unseal_handle(const char *cmd, seal_key_t *key, const char *text, size_t len)
{
	seal_keyring_t *kr = seal_keyring_new();
	handle_claims_t c;
	char msg[256];
	json_t *o;
	int rc;

	if (kr == NULL || seal_keyring_add(kr, key) < 0) {
		seal_keyring_free(kr);
		return cli_fail(cmd, "out of memory");
	}
	if ((rc = handle_open(kr, text, len, &c)) != HANDLE_OK) {
		snprintf(msg, sizeof(msg), "%s: %s (key id %s)", handle_error_code(rc),
		    handle_error_message(rc), seal_keyring_current(kr)->id);
		seal_keyring_free(kr);
		return cli_fail(cmd, msg);
	}
	seal_keyring_free(kr);
	o = unseal_claims_json(&c);
	handle_claims_free(&c);
	if (o == NULL)
		return cli_fail(cmd, "out of memory");
	cli_json_print(o);
	json_decref(o);
	return CLI_OK;
}

static int
unseal_token(const char *cmd, const seal_key_t *key, const char *text, size_t len)
{
	char *plain = NULL, msg[128];
	json_error_t jerr;
	size_t plainlen;
	json_t *j;
	int rc;

	if ((rc = seal_open(key, text, len, &plain, &plainlen)) != SEAL_OK)
		return cli_fail(cmd, rc == SEAL_E_FORMAT ? "token is not valid base64 of a "
		    "sealed box" : "token does not open with this key (wrong key or tampered)");
	j = json_loadb(plain, plainlen, 0, &jerr);
	secmem_guarded_free(plain);
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(msg, sizeof(msg), "token opened but does not hold a JSON object");
		return cli_fail(cmd, msg);
	}
	cli_json_redact(j);
	cli_json_print(j);
	json_decref(j);
	return CLI_OK;
}

/* Trimmed token text from argv or stdin ("-"), in guarded memory. */
static int
unseal_input(const char *arg, char **out, size_t *outlen, char *err, size_t errlen)
{
	char *buf, *s;
	size_t len;

	if (strcmp(arg, "-") == 0) {
		if (cli_read_stdin(CLI_TOKEN_MAX_READ, &buf, &len, err, errlen) < 0)
			return -1;
	} else if ((buf = secmem_guarded_dup(arg, strlen(arg))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (s = buf; *s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'; s++)
		;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
	    s[len - 1] == '\n'))
		len--;
	memmove(buf, s, len);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

int
cmd_unseal(int argc, char **argv)
{
	const char *keyp = NULL, *arg = NULL;
	char err[512], *text = NULL;
	seal_key_t *key;
	size_t len;
	int m, rc;

	if (cli_wants_help(argc, argv)) {
		printf("usage: %s\n  Open a tokenizer token or an sgh1 handle with the private key\n"
		    "  FILE (seal.key); TOKEN '-' reads stdin. Secret values are redacted.\n",
		    unseal_usage);
		return CLI_OK;
	}
	for (int i = 1; i < argc; i++) {
		if ((m = cli_opt(argc, argv, &i, "--key", &keyp)) < 0)
			return cli_usage_err(argv[0], unseal_usage, "missing value for", "--key");
		else if (m == 0 && arg == NULL && (argv[i][0] != '-' || argv[i][1] == '\0'))
			arg = argv[i];
		else if (m == 0)
			return cli_usage_err(argv[0], unseal_usage, "unexpected argument", argv[i]);
	}
	if (keyp == NULL || arg == NULL)
		return cli_usage_err(argv[0], unseal_usage, keyp ? "TOKEN is required" :
		    "--key FILE is required", NULL);
	if ((key = seal_key_load(keyp, err, sizeof(err))) == NULL)
		return cli_fail(argv[0], err);
	cli_json_scrubbing();
	if (unseal_input(arg, &text, &len, err, sizeof(err)) < 0) {
		seal_key_free(key);
		return cli_fail(argv[0], err);
	}
	if (len >= HANDLE_PREFIX_LEN && memcmp(text, HANDLE_PREFIX, HANDLE_PREFIX_LEN) == 0)
		rc = unseal_handle(argv[0], key, text, len);
	else {
		rc = unseal_token(argv[0], key, text, len);
		seal_key_free(key);
	}
	secmem_guarded_free(text);
	return rc;
}

/* --- handle mint ---------------------------------------------------------------------- */

static const char handle_usage[] = "sealgate handle mint --policy PATH --sandbox ID "
    "--credential NAME [--ttl 15m|sandbox] [--git-ref PATTERN]... [--count N] [--json] "
    "[--scope 'a b'] [--audience AUD] [--repo OWNER/NAME]... "
    "[--permission NAME:LEVEL]...";

/* Most handles one `handle mint --count` prints (benchmarks, load tests). */
#define MINT_MAX_COUNT	1000000

/* Most --git-ref patterns one handle carries (a handle names a few branches). */
#define MINT_MAX_GIT_REFS	32

struct mint_args {
	const char *policy, *sandbox, *credential, *ttl, *count, *scope, *audience;
	unsigned long n;	/* handles to mint: --count, default 1 */
	int json;
	char *git_refs[MINT_MAX_GIT_REFS];	/* --git-ref, borrowed from argv */
	size_t ngit_refs;
	/* a minted credential's narrowing: --repo, --permission (repeatable) */
	char *repos[MINTREQ_NARROW_MAX + 1], *perms[MINTREQ_NARROW_MAX + 1];
	size_t nrepos, nperms;
};

/* --repo / --permission at argv[*i]: appended to a's list. 1 taken, 0 not these, -1
 * missing value or too many. */
static int
mint_parse_narrow(int argc, char **argv, int *i, struct mint_args *a)
{
	const char *v = NULL;
	int m;

	if ((m = cli_opt(argc, argv, i, "--repo", &v)) > 0) {
		if (a->nrepos > MINTREQ_NARROW_MAX)
			return -1;
		a->repos[a->nrepos++] = (char *)v;
	} else if (m == 0 && (m = cli_opt(argc, argv, i, "--permission", &v)) > 0) {
		if (a->nperms > MINTREQ_NARROW_MAX)
			return -1;
		a->perms[a->nperms++] = (char *)v;
	}
	return m;
}

/* --count N: 1 .. MINT_MAX_COUNT. */
static int
mint_parse_count(const char *cmd, struct mint_args *a)
{
	char msg[64], *end;

	a->n = 1;
	if (a->count == NULL)
		return CLI_OK;
	errno = 0;
	a->n = strtoul(a->count, &end, 10);
	if (a->count[0] >= '0' && a->count[0] <= '9' && *end == '\0' && errno == 0 &&
	    a->n >= 1 && a->n <= MINT_MAX_COUNT)
		return CLI_OK;
	snprintf(msg, sizeof(msg), "--count wants a number from 1 to %d, not", MINT_MAX_COUNT);
	return cli_usage_err(cmd, handle_usage, msg, a->count);
}

static int
mint_parse_args(int argc, char **argv, struct mint_args *a)
{
	static const char *const names[] = {"--policy", "--sandbox", "--credential", "--ttl",
	    "--count", "--scope", "--audience"};
	const char **vals[] = {&a->policy, &a->sandbox, &a->credential, &a->ttl, &a->count,
	    &a->scope, &a->audience};
	int m = 0;

	for (int i = 2; i < argc; i++) {
		for (size_t k = 0; k < SG_ARRAY_LEN(names); k++)
			if ((m = cli_opt(argc, argv, &i, names[k], vals[k])) != 0)
				break;
		if (m == 0)
			m = mint_parse_narrow(argc, argv, &i, a);
		if (m < 0)
			return cli_usage_err(argv[0], handle_usage, "missing value for", argv[i]);
		if (m == 0 && strcmp(argv[i], "--git-ref") == 0) {
			if (i + 1 >= argc)
				return cli_usage_err(argv[0], handle_usage, "missing value for",
				    argv[i]);
			if (a->ngit_refs == MINT_MAX_GIT_REFS)
				return cli_usage_err(argv[0], handle_usage, "too many", "--git-ref");
			a->git_refs[a->ngit_refs++] = argv[++i];
		} else if (m == 0 && strcmp(argv[i], "--json") == 0)
			a->json = 1;
		else if (m == 0)
			return cli_usage_err(argv[0], handle_usage, "unexpected argument", argv[i]);
	}
	if (!a->policy || !a->sandbox || !a->credential)
		return cli_usage_err(argv[0], handle_usage,
		    "--policy, --sandbox and --credential are required", NULL);
	return mint_parse_count(argv[0], a);
}

/*
 * Handle lifetime: the credential's (sandbox-lifetime, bounded by its max_ttl, or a
 * wall-clock ttl), a shorter wall-clock --ttl, or --ttl sandbox where the credential's
 * handles are sandbox-lifetime already.
 */
static int
mint_lifetime(const char *cmd, const struct mint_args *a, const policy_t *p,
    const policy_credential_t *cred, sandbox_lifetime_t *life)
{
	sandbox_view_t v;
	char msg[256];
	uint64_t ms;

	if (sandbox_view_find(p, NULL, a->sandbox, 0, &v) < 0)
		return cli_fail(cmd, "no such sandbox");
	sandbox_view_lifetime(&v, cred, life);
	if (a->ttl == NULL)
		return CLI_OK;
	if (strcmp(a->ttl, "sandbox") == 0) {
		if (life->sandbox)
			return CLI_OK;
		snprintf(msg, sizeof(msg), "--ttl sandbox: credential '%s' has a wall-clock ttl "
		    "(%llus); set its ttl to \"sandbox\" in the policy", cred->name,
		    (unsigned long long)cred->ttl_s);
		return cli_fail(cmd, msg);
	}
	if (util_parse_duration_ms(a->ttl, &ms) < 0 || ms < 1000)
		return cli_usage_err(cmd, handle_usage, "--ttl wants a duration of at least 1s "
		    "such as 15m (or \"sandbox\"), not", a->ttl);
	if (ms / 1000 > life->ttl_s) {
		snprintf(msg, sizeof(msg), "--ttl %s is longer than credential '%s' allows "
		    "(%llus)", a->ttl, cred->name, (unsigned long long)life->ttl_s);
		return cli_fail(cmd, msg);
	}
	life->sandbox = false;
	life->ttl_s = ms / 1000;
	return CLI_OK;
}

/* Check the sandbox exists and holds the credential; CLI_OK or the exit code. */
static int
mint_check_grant(const char *cmd, const policy_t *p, const struct mint_args *a,
    const policy_credential_t **cred)
{
	const policy_sandbox_t *sb = policy_sandbox_find(p, a->sandbox);
	char msg[512];

	*cred = policy_credential_find(p, a->credential);
	if (sb == NULL)
		snprintf(msg, sizeof(msg), "no sandbox '%s' in %s", a->sandbox, a->policy);
	else if (*cred == NULL)
		snprintf(msg, sizeof(msg), "no credential '%s' in %s", a->credential, a->policy);
	else if (!policy_sandbox_grants(sb, a->credential))
		snprintf(msg, sizeof(msg), "sandbox '%s' is not granted credential '%s'",
		    a->sandbox, a->credential);
	else
		return CLI_OK;
	return cli_fail(cmd, msg);
}

/* --git-ref: valid patterns within the credential's git.push refs. */
static int
mint_check_git_refs(const char *cmd, const policy_credential_t *cred,
    const struct mint_args *a)
{
	const policy_git_push_t *g = cred->git_push;
	char msg[512];

	if (a->ngit_refs > 0 && g == NULL) {
		snprintf(msg, sizeof(msg), "--git-ref: credential '%s' has no git.push block",
		    cred->name);
		return cli_fail(cmd, msg);
	}
	for (size_t i = 0; i < a->ngit_refs; i++) {
		const char *r = a->git_refs[i];

		if (gitpush_pattern_check(r) < 0)
			snprintf(msg, sizeof(msg), "--git-ref %.256s is not a push-ref pattern "
			    "(\"refs/...\", '*' within a segment, '**' across)", r);
		else if (!gitpush_pattern_within(r, g->refs.v, g->refs.n))
			snprintf(msg, sizeof(msg), "--git-ref %.256s is not within credential "
			    "'%s''s git.push refs", r, cred->name);
		else
			continue;
		return cli_fail(cmd, msg);
	}
	return CLI_OK;
}

static seal_keyring_t *
mint_keyring(const char *cmd, const policy_t *p)
{
	seal_keyring_t *kr;
	char err[512];

	if (p->keys.seal_key == NULL) {
		cli_fail(cmd, "the policy names no keys.seal_key");
		return NULL;
	}
	kr = seal_keyring_load(p->keys.seal_key, p->keys.open_keys.v, p->keys.open_keys.n,
	    p->keys.retired_key_ids.v, p->keys.retired_key_ids.n, err, sizeof(err));
	if (kr == NULL)
		cli_fail(cmd, err);
	else if (seal_keyring_current(kr) == NULL) {
		cli_fail(cmd, "the current seal key is listed in keys.retired_key_ids");
		seal_keyring_free(kr);
		kr = NULL;
	}
	return kr;
}

/* One handle: its text on a line, or the JSON object (one compact line with --count). */
static void
mint_print(const handle_claims_t *c, const char *text, const policy_credential_t *cred,
    const struct mint_args *a)
{
	char exp[64];
	json_t *o;

	if (!a->json) {
		printf("%s\n", text);
		return;
	}
	cli_format_time(c->exp, exp, sizeof(exp));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?}", "handle", text, "handle_id",
	    c->hid, "expires_at", exp, "lifetime", c->life_sandbox ? "sandbox" : "ttl",
	    "credential", c->cred, "sandbox", c->sb, "env", cred->env);
	if (a->count == NULL)
		cli_json_print(o);
	else {
		json_dumpf(o, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	}
	json_decref(o);
}

/* a->n handles with the same claims, each with its own random handle id. */
static int
mint_loop(const char *cmd, const seal_key_t *key, handle_claims_t *c,
    const policy_credential_t *cred, const struct mint_args *a)
{
	char *text = NULL;
	int rc;

	for (unsigned long i = 0; i < a->n; i++) {
		c->hid[0] = '\0';	/* handle_mint draws a fresh one */
		if ((rc = handle_mint(key, c, &text)) != HANDLE_OK)
			return cli_fail(cmd, handle_error_message(rc));
		mint_print(c, text, cred, a);
		free(text);
		text = NULL;
	}
	if (fflush(stdout) != 0)
		return cli_fail(cmd, "cannot write the handles to stdout");
	return CLI_OK;
}

/* --scope, --audience, --repo, --permission: only for a minted credential, within what
 * it allows. */
static int
mint_check_narrow(const char *cmd, const struct mint_args *a,
    const policy_credential_t *cred)
{
	policy_strlist_t repos = {a->nrepos, (char **)a->repos};
	policy_strlist_t perms = {a->nperms, (char **)a->perms};
	const char *why;
	char msg[256];

	if (a->scope == NULL && a->audience == NULL && a->nrepos == 0 && a->nperms == 0)
		return CLI_OK;
	if (cred->mint == NULL) {
		snprintf(msg, sizeof(msg), "--scope, --audience, --repo and --permission narrow "
		    "minted credentials only ('%s' has no mint)", cred->name);
		return cli_fail(cmd, msg);
	}
	if (mintreq_narrow_check(cred->mint, a->scope, &repos, &perms, &why) < 0 ||
	    mintreq_audience_check(cred->mint, a->audience, &why) < 0)
		return cli_fail(cmd, why);
	return CLI_OK;
}

static int
mint_run(const char *cmd, const policy_t *p, const struct mint_args *a)
{
	const policy_credential_t *cred;
	sandbox_lifetime_t life;
	handle_claims_t c;
	seal_keyring_t *kr;
	char exp[64];
	int rc;

	if ((rc = mint_check_grant(cmd, p, a, &cred)) != CLI_OK ||
	    (rc = mint_check_git_refs(cmd, cred, a)) != CLI_OK ||
	    (rc = mint_lifetime(cmd, a, p, cred, &life)) != CLI_OK ||
	    (rc = mint_check_narrow(cmd, a, cred)) != CLI_OK)
		return rc;
	if ((kr = mint_keyring(cmd, p)) == NULL)
		return CLI_FAIL;
	memset(&c, 0, sizeof(c));
	c.cred = (char *)a->credential;
	c.sb = (char *)a->sandbox;
	c.iat = util_now_s();
	c.exp = c.iat + (int64_t)life.ttl_s;
	c.life_sandbox = life.sandbox;
	c.git_refs.v = (char **)(uintptr_t)a->git_refs;
	c.git_refs.n = a->ngit_refs;
	c.scope = (char *)a->scope;
	c.audience = (char *)a->audience;
	c.repos = (policy_strlist_t){a->nrepos, (char **)a->repos};
	c.perms = (policy_strlist_t){a->nperms, (char **)a->perms};
	if (life.sandbox && !a->json) {
		/* the kind of handle, said once (--json says it in "lifetime") */
		cli_format_time(c.exp, exp, sizeof(exp));
		fprintf(stderr, "sealgate handle mint: sandbox-lifetime handle%s: valid while "
		    "sandbox %s is in the policy, at most until %s (max_ttl)\n",
		    a->n > 1 ? "s" : "", c.sb, exp);
	}
	rc = mint_loop(cmd, seal_keyring_current(kr), &c, cred, a);
	seal_keyring_free(kr);
	return rc;
}

int
cmd_handle(int argc, char **argv)
{
	struct mint_args a = {0};
	policy_t *p;
	int rc;

	if (cli_wants_help(argc, argv)) {
		printf("usage: %s\n  Mint a handle for SANDBOX to use CREDENTIAL, sealed to the\n"
		    "  policy's keys.seal_key. A credential with ttl \"sandbox\" gives\n"
		    "  sandbox-lifetime handles (valid while the sandbox is, at most max_ttl);\n"
		    "  --ttl may only shorten the credential's ttl (a wall-clock handle).\n"
		    "  --count N mints N distinct handles (own handle ids, same claims), one per\n"
		    "  line; N is at most %d.\n"
		    "  --git-ref PATTERN (repeatable) narrows the credential's git.push refs\n"
		    "  for this handle; each must be within them.\n"
		    "  --json prints {handle, handle_id, expires_at, lifetime, credential,\n"
		    "  sandbox, env}; lifetime is \"sandbox\" or \"ttl\" (wall-clock)\n"
		    "  (with --count: one compact object per line).\n",
		    handle_usage, MINT_MAX_COUNT);
		return CLI_OK;
	}
	if (argc < 2 || strcmp(argv[1], "mint") != 0)
		return cli_usage_err(argv[0], handle_usage, "unknown subcommand",
		    argc < 2 ? "(none)" : argv[1]);
	if ((rc = mint_parse_args(argc, argv, &a)) != CLI_OK)
		return rc;
	if ((p = cli_load_policy(argv[0], a.policy)) == NULL)
		return CLI_FAIL;
	rc = mint_run(argv[0], p, &a);
	policy_unref(p);
	return rc;
}
