/* plan.c — what the core decided for a request, in the forms the shell applies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "plan.h"

void
plan_init(plan_t *p)
{
	memset(p, 0, sizeof(*p));
	inject_edits_init(&p->edits);
}

static void
plan_strlist_free(policy_strlist_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

void
plan_free(plan_t *p)
{
	for (size_t i = 0; i < p->nscrub; i++)
		free(p->scrub[i].handle);
	for (size_t i = 0; i < p->nbody; i++)
		free(p->body[i].handle);
	inject_edits_free(&p->edits);
	tokenizer_out_free(&p->tk);
	free(p->aws_handle);
	for (size_t i = 0; i < p->git_refs.n; i++)
		free(p->git_refs.v[i]);
	free(p->git_refs.v);
	stscache_cred_unref(p->aws_assumed);
	free(p->mint_handle);
	mintcache_tok_unref(p->mint_tok);
	free(p->mint_scope);
	free(p->mint_audience);
	plan_strlist_free(&p->mint_repos);
	plan_strlist_free(&p->mint_perms);
	for (size_t i = 0; i < p->nlive; i++)
		secval_unref(p->live[i].val);
	sodium_memzero(p, sizeof(*p));
	inject_edits_init(&p->edits);
}

int
plan_scrub_into(const plan_t *p, scrub_t *s)
{
	static const char mark[] = TOKENIZER_SCRUB_TEXT;

	for (size_t i = 0; i < p->tk.nscrub; i++)
		if (scrub_add(s, p->tk.scrub[i].secret, p->tk.scrub[i].len, mark,
		    sizeof(mark) - 1) < 0)
			return -1;
	/* a secret seen before with another handle: scrub_add swaps its replacement;
	 * its encoded forms (the Basic and query encodings among them) come with it. One
	 * shorter than SCRUB_MIN_NEEDLE is not scrubbed (scrub.h): it would match
	 * ordinary text, and tokenizer secrets are treated the same (tk_add_scrub). */
	for (size_t i = 0; i < p->nscrub; i++) {
		if (p->scrub[i].secret_len < SCRUB_MIN_NEEDLE)
			continue;
		if (scrub_add(s, p->scrub[i].secret, p->scrub[i].secret_len, p->scrub[i].handle,
		    p->scrub[i].handle_len) < 0)
			return -1;
	}
	return 0;
}

int
plan_body_scrubber(const plan_t *p, scrub_t **out)
{
	scrub_t *s;

	*out = NULL;
	if (p->nbody == 0 && p->tk.nbody == 0)
		return 0;
	if ((s = scrub_new(SCRUB_LITERAL)) == NULL)
		return -1;
	for (size_t i = 0; i < p->tk.nbody; i++) {
		const tokenizer_body_t *b = &p->tk.body[i];

		if (scrub_add(s, b->placeholder, b->placeholder_len, b->token, b->token_len) < 0)
			goto fail;
	}
	for (size_t i = 0; i < p->nbody; i++) {
		const plan_secret_t *b = &p->body[i];
		const char *ph = b->cred->inject.placeholder;

		if (scrub_add(s, b->handle, b->handle_len, b->secret, b->secret_len) < 0 ||
		    (ph && *ph && scrub_add(s, ph, strlen(ph), b->secret, b->secret_len) < 0))
			goto fail;
	}
	*out = s;
	return 0;
fail:
	scrub_free(s);
	return -1;
}

bool
plan_plain_http_ok(const plan_t *p)
{
	for (size_t i = 0; i < p->nscrub; i++)
		if (!p->scrub[i].cred->allow_plain_http)
			return false;
	return true;
}

void
plan_pool_key(const plan_t *p, const char *peer, const char *host, uint16_t port, bool tls,
    const char *proxy_token, char *key, size_t len)
{
	const char *names[INJECT_MAX_HANDLES];
	size_t n = 0, off;

	for (size_t i = 0; i < p->nscrub && n < INJECT_MAX_HANDLES; i++) {
		const char *nm = p->scrub[i].cred->name;
		size_t j = n++;

		while (j > 0 && strcmp(names[j - 1], nm) > 0) {
			names[j] = names[j - 1];
			j--;
		}
		names[j] = nm;
	}
	off = (size_t)snprintf(key, len, "%s|%s|%u|%d", p->sandbox[0] ? p->sandbox : peer,
	    host, port, tls);
	for (size_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(key + off, len - off, "|%s", names[i]);
	if (p->tk.n > 0 && off < len)
		off += (size_t)snprintf(key + off, len - off, "|tk:%s", p->tk.id);
	if (p->sandbox[0] == '\0' && proxy_token != NULL && proxy_token[0] && off < len) {
		/* sandboxes behind one address are told apart by their proxy token */
		unsigned char h[8];
		char hex[17];

		crypto_generichash(h, sizeof(h), (const unsigned char *)proxy_token,
		    strlen(proxy_token), NULL, 0);
		util_hex_encode(h, sizeof(h), hex);
		snprintf(key + off, len - off, "|pt:%s", hex);
	}
}

static int
plan_refuse(plan_t *p, unsigned status, const char *code, const char *msg)
{
	p->status = status;
	p->code = code;
	snprintf(p->message, sizeof(p->message), "%s", msg);
	return -1;
}

int
plan_sign(plan_t *p, const http_head_t *head, const void *body, size_t len)
{
	const void *b = len ? body : "";
	char *v;

	if (p->hmac_cred != NULL) {
		const policy_credential_t *cr = p->hmac_cred;

		v = inject_hmac_value(cr, b, len);
		if (v == NULL || inject_edits_set_header(head, &p->edits,
		    cr->inject.name ? cr->inject.name : "Authorization", v) < 0)
			return plan_refuse(p, 500, "internal_error", "cannot sign the request body");
	}
	if (p->tk.hmac.set) {
		v = tokenizer_hmac_value(&p->tk, b, len);
		if (v == NULL || inject_edits_set_header(head, &p->edits, p->tk.hmac.dst, v) < 0)
			return plan_refuse(p, 500, "internal_error", "cannot sign the request body");
	}
	return 0;
}
