/*
 * test_clienthello.c — SNI from real ClientHellos (captured from `openssl s_client` and
 * from python's ssl module, with and without a server name), fed whole, byte by byte and
 * split across two records; truncations, non-TLS first bytes, malformed lengths, bad
 * names, a duplicate server_name and the peek bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "clienthello.h"
#include "util.h"

/* openssl_sni: 321 bytes */
static const char HELLO_OPENSSL_SNI[] =
    "160301013c010001380303e5a9f87dee6042f2754499068e6cbdf260b9faa551f0697eae"
    "97301204b6024420b4db0db27803c078b8a9af67fb74729813ba9c3a11063b9c933282f4"
    "d0a3343d003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006b"
    "c023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000b1"
    "00000014001200000f6170692e6578616d706c652e636f6d000b000403000102000a0016"
    "0014001d0017001e0019001801000101010201030104002300000016000000170000000d"
    "002a0028040305030603080708080809080a080b08040805080604010501060103030301"
    "0302040205020602002b0009080304030303020301002d00020101003300260024001d00"
    "20d93132445cc1cc72cf4124c27855e6bc15bd540596233e8a987d74c566ac1862";
/* openssl_nosni: 297 bytes */
static const char HELLO_OPENSSL_NOSNI[] =
    "160301012401000120030341e2fcb4fb1b02b87018e665a2c26029b86d632f159fada0d9"
    "6e15fcb4d8f43d201106261ffff90e99a504e98afec2fcaa00261e1d9addbf2d612180f7"
    "07ccc4ef003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006b"
    "c023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff01000099"
    "000b000403000102000a00160014001d0017001e00190018010001010102010301040023"
    "00000016000000170000000d002a0028040305030603080708080809080a080b08040805"
    "0806040105010601030303010302040205020602002b0009080304030303020301002d00"
    "020101003300260024001d00204f3161e1afcb7458fb4034bad2d4f1830bd980b5c23311"
    "147cca5dff15d25c0f";
/* python_sni: 517 bytes */
static const char HELLO_PYTHON_SNI[] =
    "1603010200010001fc0303e6e8f9bd5bb0ac723e323d10df8dff9adbacbb04bbce4e14ea"
    "33b41a9c3a740d202d4dcd5f174769c62248f7db471f616bd3bfe84ea2b4a7bc9e15fb38"
    "afa2544d0024130213031301c02cc030c02bc02fcca9cca8c024c028c023c027009f009e"
    "006b006700ff0100018f0000000e000c0000096563686f2e74657374000b000403000102"
    "000a00160014001d0017001e001900180100010101020103010400230000001600000017"
    "0000000d002a0028040305030603080708080809080a080b080408050806040105010601"
    "030303010302040205020602002b00050403040303002d00020101003300260024001d00"
    "204c7557bd98ef2f394b808153b80aba8839411ee0e695afe234c54027e6386b52001500"
    "e40000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000";
/* python_nosni: 517 bytes */
static const char HELLO_PYTHON_NOSNI[] =
    "1603010200010001fc03030ed15d8b966de3e305e4d1cd8d5aeb7fe1cfa7c309595c6d76"
    "8f4767ce7edfcf205a01620361799be2612ebc88430ca9eb07a399b41da81f0647bf5dcd"
    "e76e5bd50024130213031301c02cc030c02bc02fcca9cca8c024c028c023c027009f009e"
    "006b006700ff0100018f000b000403000102000a00160014001d0017001e001900180100"
    "0101010201030104002300000016000000170000000d002a002804030503060308070808"
    "0809080a080b080408050806040105010601030303010302040205020602002b00050403"
    "040303002d00020101003300260024001d0020ba041de8dd2da91f58644398970335cbc3"
    "439ce8503d2bf866532f07acd33d43001500f60000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000";

static uint8_t *
unhex(const char *h, size_t *len)
{
	uint8_t *b;

	*len = strlen(h) / 2;
	b = malloc(*len + 1);
	assert_non_null(b);
	assert_int_equal(util_hex_decode(h, strlen(h), b, *len), 0);
	return b;
}

static clienthello_t *
ch_new(void)
{
	clienthello_t *ch = malloc(sizeof(*ch));

	assert_non_null(ch);
	return ch;
}

/* Every strict prefix answers MORE; the whole answers want (and names sni). */
static void
check_stream(const uint8_t *b, size_t len, enum clienthello_res want, const char *sni)
{
	clienthello_t *ch = ch_new();

	for (size_t i = 0; i < len; i++)
		assert_int_equal(clienthello_parse(ch, b, i), CLIENTHELLO_MORE);
	assert_int_equal(clienthello_parse(ch, b, len), want);
	assert_string_equal(ch->sni, sni);
	free(ch);
}

static void
check_hex(const char *hex, enum clienthello_res want, const char *sni)
{
	size_t len;
	uint8_t *b = unhex(hex, &len);

	check_stream(b, len, want, sni);
	free(b);
}

static void
test_real_hellos(void **state)
{
	(void)state;
	check_hex(HELLO_OPENSSL_SNI, CLIENTHELLO_SNI, "api.example.com");
	check_hex(HELLO_OPENSSL_NOSNI, CLIENTHELLO_NO_SNI, "");
	check_hex(HELLO_PYTHON_SNI, CLIENTHELLO_SNI, "echo.test");
	check_hex(HELLO_PYTHON_NOSNI, CLIENTHELLO_NO_SNI, "");
}

/* Bytes after the hello (early data, a second record) change nothing. */
static void
test_trailing_bytes_ignored(void **state)
{
	size_t len;
	uint8_t *b = unhex(HELLO_PYTHON_SNI, &len);
	uint8_t *more = malloc(len + 64);
	clienthello_t *ch = ch_new();

	(void)state;
	assert_non_null(more);
	memcpy(more, b, len);
	memset(more + len, 0xff, 64);
	assert_int_equal(clienthello_parse(ch, more, len + 64), CLIENTHELLO_SNI);
	assert_string_equal(ch->sni, "echo.test");
	free(ch);
	free(more);
	free(b);
}

/* The same handshake message cut into two records: SNI still found. */
static void
test_split_across_records(void **state)
{
	size_t len;
	uint8_t *b = unhex(HELLO_OPENSSL_SNI, &len);
	size_t body = len - 5, first = 40;
	uint8_t *two = malloc(len + 5);

	(void)state;
	assert_non_null(two);
	memcpy(two, b, 5);
	two[3] = (uint8_t)(first >> 8);
	two[4] = (uint8_t)first;
	memcpy(two + 5, b + 5, first);
	memcpy(two + 5 + first, b, 5);
	two[5 + first + 3] = (uint8_t)((body - first) >> 8);
	two[5 + first + 4] = (uint8_t)(body - first);
	memcpy(two + 10 + first, b + 5 + first, body - first);
	check_stream(two, len + 5, CLIENTHELLO_SNI, "api.example.com");
	free(two);
	free(b);
}

static void
test_not_tls(void **state)
{
	clienthello_t *ch = ch_new();
	const char *get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	const uint8_t alert[] = { 0x15, 3, 3, 0, 2, 2, 40 };
	const uint8_t badver[] = { 0x16, 2, 0, 0, 4, 1, 0, 0, 0 };
	const uint8_t empty_rec[] = { 0x16, 3, 1, 0, 0 };
	const uint8_t huge_rec[] = { 0x16, 3, 1, 0x40, 0x01 };
	const uint8_t server_hello[] = { 0x16, 3, 3, 0, 4, 2, 0, 0, 0 };

	(void)state;
	assert_int_equal(clienthello_parse(ch, (const uint8_t *)get, strlen(get)),
	    CLIENTHELLO_NOT_TLS);
	assert_int_equal(clienthello_parse(ch, alert, sizeof(alert)), CLIENTHELLO_NOT_TLS);
	assert_int_equal(clienthello_parse(ch, badver, sizeof(badver)), CLIENTHELLO_NOT_TLS);
	assert_int_equal(clienthello_parse(ch, empty_rec, sizeof(empty_rec)),
	    CLIENTHELLO_NOT_TLS);
	assert_int_equal(clienthello_parse(ch, huge_rec, sizeof(huge_rec)),
	    CLIENTHELLO_NOT_TLS);
	assert_int_equal(clienthello_parse(ch, server_hello, sizeof(server_hello)),
	    CLIENTHELLO_NOT_TLS);
	assert_string_equal(clienthello_res_name(CLIENTHELLO_NOT_TLS), "not_tls");
	free(ch);
}

/* Offset of the server name's first byte in the openssl capture. */
static size_t
name_offset(const uint8_t *b, size_t len, const char *name)
{
	for (size_t i = 0; i + strlen(name) <= len; i++)
		if (memcmp(b + i, name, strlen(name)) == 0)
			return i;
	fail();
	return 0;
}

static void
test_bad_names(void **state)
{
	size_t len;
	uint8_t *b = unhex(HELLO_OPENSSL_SNI, &len);
	size_t at = name_offset(b, len, "api.example.com");
	clienthello_t *ch = ch_new();

	(void)state;
	b[at + 3] = 0;			/* a NUL inside the name */
	assert_int_equal(clienthello_parse(ch, b, len), CLIENTHELLO_NOT_TLS);
	b[at + 3] = '/';
	assert_int_equal(clienthello_parse(ch, b, len), CLIENTHELLO_NOT_TLS);
	b[at + 3] = '.';
	b[at] = 'A';			/* upper case is folded */
	assert_int_equal(clienthello_parse(ch, b, len), CLIENTHELLO_SNI);
	assert_string_equal(ch->sni, "api.example.com");
	b[at - 1]++;			/* name length one past its entry */
	assert_int_equal(clienthello_parse(ch, b, len), CLIENTHELLO_NOT_TLS);
	free(ch);
	free(b);
}

/* Each length field one larger than the bytes behind it: never read past the end. */
static void
test_lengths_overrun(void **state)
{
	size_t len;
	uint8_t *b = unhex(HELLO_PYTHON_SNI, &len);
	clienthello_t *ch = ch_new();

	(void)state;
	b[8]++;				/* handshake length: waits for the next record */
	assert_int_equal(clienthello_parse(ch, b, len), CLIENTHELLO_MORE);
	b[8]--;
	b[5 + 4 + 2 + 32]++;		/* session id length */
	assert_int_equal(clienthello_parse(ch, b, len), CLIENTHELLO_NOT_TLS);
	b[5 + 4 + 2 + 32]--;
	assert_int_equal(clienthello_parse(ch, b, len), CLIENTHELLO_SNI);
	free(ch);
	free(b);
}

static void
test_duplicate_server_name(void **state)
{
	/* record(hs(client_hello: v3.3, random, sid 0, 1 suite, 1 method, two sni)) */
	static const char *hex =
	    "1603010053" "0100004f" "0303"
	    "0000000000000000000000000000000000000000000000000000000000000000"
	    "00" "0002c02f" "0100" "0024"
	    "0000000e000c0000096563686f2e74657374"
	    "0000000e000c0000096563686f2e74657374";

	(void)state;
	check_hex(hex, CLIENTHELLO_NOT_TLS, "");
}

static void
test_no_extensions(void **state)
{
	static const char *hex =
	    "160301002d" "01000029" "0303"
	    "0000000000000000000000000000000000000000000000000000000000000000"
	    "00" "0002c02f" "0100";

	(void)state;
	check_hex(hex, CLIENTHELLO_NO_SNI, "");
}

/* A hello that never completes within the peek bound is refused, not awaited. */
static void
test_peek_bound(void **state)
{
	size_t len = CLIENTHELLO_PEEK_MAX + 64, off = 0;
	uint8_t *b = calloc(1, len);
	clienthello_t *ch = ch_new();

	(void)state;
	assert_non_null(b);
	/* handshake header claims 64 KiB; records of 1000 bytes follow */
	while (off + 5 <= len) {
		b[off] = 0x16; b[off + 1] = 3; b[off + 2] = 1;
		b[off + 3] = 1000 >> 8; b[off + 4] = 1000 & 0xff;
		off += 5 + 1000;
	}
	b[5] = 1; b[6] = 0; b[7] = 0x40; b[8] = 0x00;
	assert_int_equal(clienthello_parse(ch, b, 5 + 1000), CLIENTHELLO_NOT_TLS);
	b[7] = 0x3f; b[8] = 0xf0;	/* fits the buffer, but its records pass the bound */
	assert_int_equal(clienthello_parse(ch, b, 5 + 1000), CLIENTHELLO_MORE);
	assert_int_equal(clienthello_parse(ch, b, 16 * 1005), CLIENTHELLO_MORE);
	assert_int_equal(clienthello_parse(ch, b, len), CLIENTHELLO_NOT_TLS);
	free(ch);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_hellos),
		cmocka_unit_test(test_trailing_bytes_ignored),
		cmocka_unit_test(test_split_across_records),
		cmocka_unit_test(test_not_tls),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_lengths_overrun),
		cmocka_unit_test(test_duplicate_server_name),
		cmocka_unit_test(test_no_extensions),
		cmocka_unit_test(test_peek_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
