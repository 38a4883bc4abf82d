/*
 * fuzz_clienthello.c — the ClientHello SNI peek on arbitrary bytes.
 *
 * The input is the stream a client sent. Invariants: the whole input answers one of the
 * four results; an SNI answer names 1..CLIENTHELLO_SNI_MAX lower-case host-name
 * characters and any other answer leaves the name empty; every prefix answers MORE or
 * exactly what the whole answers (with the same name), so feeding a peek more bytes
 * never changes a decision already made.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clienthello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_name(const clienthello_t *ch, enum clienthello_res r)
{
	size_t n = strlen(ch->sni);

	if (r != CLIENTHELLO_SNI) {
		if (n != 0)
			abort();
		return;
	}
	if (n == 0 || n > CLIENTHELLO_SNI_MAX)
		abort();
	for (size_t i = 0; i < n; i++) {
		char c = ch->sni[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.'))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static clienthello_t whole, part;
	enum clienthello_res r = clienthello_parse(&whole, data, size);
	size_t step = size / 64 + 1;

	if (r != CLIENTHELLO_SNI && r != CLIENTHELLO_NO_SNI && r != CLIENTHELLO_MORE &&
	    r != CLIENTHELLO_NOT_TLS)
		abort();
	check_name(&whole, r);
	for (size_t i = 0; i < size; i += step) {
		enum clienthello_res p = clienthello_parse(&part, data, i);

		check_name(&part, p);
		if (p != CLIENTHELLO_MORE &&
		    (p != r || strcmp(part.sni, whole.sni) != 0))
			abort();
	}
	return 0;
}
