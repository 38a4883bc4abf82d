/*
 * cmd_sandbox.c — `sealgate sandbox add|list|get|rm|fork|suspend|resume`: the admin
 * API's /v1/sandboxes
 * over a plain blocking HTTP/1.1 client (one request, Connection: close).
 *
 * The admin address and token come from --policy PATH (listen.admin, admin.token.file)
 * or --admin HOST:PORT --token-file F. Exit codes: 0 ok, 1 refused/failed, 2 usage.
 * The token is read into guarded memory (secmem.h) and never printed.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "registry.h"
#include "secmem.h"
#include "util.h"

/* Answers are a JSON document per request; a list of 65536 entries fits easily. */
#define SBX_MAX_RESPONSE	(64u * 1024 * 1024)
/* Admin calls are local and fast; a stuck server must not hang a script forever. */
#define SBX_TIMEOUT_S		30
#define SBX_MAX_REPEAT		REGISTRY_MAX_ADDRESSES

static const char sbx_usage[] =
	"usage: sealgate sandbox add ID --template T --address CIDR [--address CIDR ...]\n"
	"                        [--label k=v ...] [--expires 1h|UNIX|RFC3339] [--token-env VAR]\n"
	"                        [--restored-from P --at UNIX|RFC3339]\n"
	"       sealgate sandbox list\n"
	"       sealgate sandbox get ID\n"
	"       sealgate sandbox rm ID\n"
	"       sealgate sandbox fork PARENT NEW --address CIDR [--address CIDR ...]\n"
	"                        [--template T] [--expires ...] [--token-env VAR]\n"
	"       sealgate sandbox suspend ID\n"
	"       sealgate sandbox resume ID\n"
	"  connection: --policy PATH | --admin HOST:PORT --token-file FILE;  --json: raw JSON\n";

struct sbx_args {
	const char *policy, *admin, *token_file, *tmpl, *expires, *token_env;
	const char *restored_from, *at;
	const char *addresses[SBX_MAX_REPEAT], *labels[REGISTRY_MAX_LABELS];
	size_t naddresses, nlabels;
	bool json;
};

struct sbx_conn {
	char host[256], port[16];
	char *token;		/* guarded memory */
};

static int
sbx_parse(int argc, char **argv, struct sbx_args *a)
{
	static const struct option opts[] = {
		{"policy", required_argument, NULL, 'p'},
		{"admin", required_argument, NULL, 'A'},
		{"token-file", required_argument, NULL, 'T'},
		{"template", required_argument, NULL, 't'},
		{"address", required_argument, NULL, 'a'},
		{"label", required_argument, NULL, 'l'},
		{"expires", required_argument, NULL, 'e'},
		{"token-env", required_argument, NULL, 'E'},
		{"restored-from", required_argument, NULL, 'R'},
		{"at", required_argument, NULL, 'W'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:A:T:t:a:l:e:E:R:W:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'p': a->policy = optarg; break;
		case 'A': a->admin = optarg; break;
		case 'T': a->token_file = optarg; break;
		case 't': a->tmpl = optarg; break;
		case 'e': a->expires = optarg; break;
		case 'E': a->token_env = optarg; break;
		case 'R': a->restored_from = optarg; break;
		case 'W': a->at = optarg; break;
		case 'j': a->json = true; break;
		case 'a':
			if (a->naddresses == SBX_MAX_REPEAT)
				return -1;
			a->addresses[a->naddresses++] = optarg;
			break;
		case 'l':
			if (a->nlabels == REGISTRY_MAX_LABELS || strchr(optarg, '=') == NULL)
				return -1;
			a->labels[a->nlabels++] = optarg;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

/* Admin address and token from the policy or the flags. */
static int
sbx_connect_info(const struct sbx_args *a, struct sbx_conn *cn)
{
	char err[512], *listen = NULL, *tokfile = NULL, *buf = NULL;
	size_t len = 0, lo = 0;
	int rc = -1;

	if (a->policy != NULL) {
		policy_errors_t errs;
		policy_t *p = policy_load(a->policy, &errs);

		if (p == NULL) {
			for (size_t i = 0; i < errs.n; i++)
				fprintf(stderr, "%s\n", errs.msg[i]);
			policy_errors_free(&errs);
			return -1;
		}
		listen = p->listen.admin ? strdup(p->listen.admin) : NULL;
		tokfile = p->admin_token_file ? strdup(p->admin_token_file) : NULL;
		policy_unref(p);
	}
	if (a->admin != NULL) {
		free(listen);
		listen = strdup(a->admin);
	}
	if (a->token_file != NULL) {
		free(tokfile);
		tokfile = strdup(a->token_file);
	}
	if (listen == NULL || tokfile == NULL) {
		fprintf(stderr, "sealgate sandbox: give --policy, or --admin and --token-file\n");
		goto done;
	}
	if (listen[0] == '[' ? sscanf(listen, "[%255[^]]]:%15s", cn->host, cn->port) != 2 :
	    sscanf(listen, "%255[^:]:%15s", cn->host, cn->port) != 2) {
		fprintf(stderr, "sealgate sandbox: bad admin address %s\n", listen);
		goto done;
	}
	if (util_read_file(tokfile, 4096, 1, &buf, &len, err, sizeof(err)) < 0) {
		fprintf(stderr, "sealgate sandbox: %s\n", err);
		goto done;
	}
	while (lo < len && strchr(" \t\r\n", buf[lo]) != NULL)
		lo++;
	while (len > lo && strchr(" \t\r\n", buf[len - 1]) != NULL)
		len--;
	cn->token = secmem_guarded_dup(buf + lo, len - lo);
	secmem_guarded_free(buf);
	rc = cn->token != NULL && len > lo ? 0 : -1;
	if (rc < 0)
		fprintf(stderr, "sealgate sandbox: %s: empty admin token\n", tokfile);
done:
	free(listen);
	free(tokfile);
	return rc;
}

static int
sbx_send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One request; *status and a malloc'd *body (NUL-terminated). 0, or -1 (network). */
static int
sbx_http(const struct sbx_conn *cn, const char *method, const char *path, const char *body,
    int *status, char **out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
	struct timeval tv = {SBX_TIMEOUT_S, 0};
	size_t blen = body ? strlen(body) : 0, cap = 4096, n = 0;
	char *head = NULL, *buf = NULL, *p;
	int fd = -1, rc = -1, gai;

	if ((gai = getaddrinfo(cn->host, cn->port, &hints, &res)) != 0) {
		fprintf(stderr, "sealgate sandbox: %s: %s\n", cn->host, gai_strerror(gai));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0)) < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "sealgate sandbox: cannot reach the admin API at %s:%s: %s\n",
		    cn->host, cn->port, strerror(errno));
		return -1;
	}
	if (asprintf(&head, "%s %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
	    method, path, cn->host, cn->port, cn->token, blen) < 0)
		head = NULL;
	if (head == NULL || sbx_send_all(fd, head, strlen(head)) < 0 ||
	    (blen && sbx_send_all(fd, body, blen) < 0))
		goto done;
	if ((buf = malloc(cap)) == NULL)
		goto done;
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap) {
			char *nb;

			if (cap >= SBX_MAX_RESPONSE || (nb = realloc(buf, cap * 2)) == NULL)
				goto done;
			buf = nb;
			cap *= 2;
		}
		r = recv(fd, buf + n, cap - n - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto done;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", status) != 1 || (p = strstr(buf, "\r\n\r\n")) == NULL)
		goto done;
	/* evhttp answers Connection: close requests without chunking */
	*out = strdup(p + 4);
	rc = *out ? 0 : -1;
done:
	if (rc < 0 && fd >= 0)
		fprintf(stderr, "sealgate sandbox: bad or no answer from %s:%s\n", cn->host,
		    cn->port);
	if (head != NULL) {
		sodium_memzero(head, strlen(head));
		free(head);
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static void
sbx_print_entry(const json_t *e)
{
	const json_t *a = json_object_get(e, "addresses"), *l = json_object_get(e, "labels"), *v;
	json_int_t exp = json_integer_value(json_object_get(e, "expires_at"));
	const char *k;
	size_t i;

	printf("%-24s %-16s ", json_string_value(json_object_get(e, "id")),
	    json_string_value(json_object_get(e, "template")));
	json_array_foreach(a, i, v)
		printf("%s%s", i ? "," : "", json_string_value(v));
	if (exp > 0)
		printf("  expires=%lld", (long long)exp);
	json_object_foreach((json_t *)l, k, v)
		printf("  %s=%s", k, json_string_value(v));
	if (json_is_string(json_object_get(e, "parent")))
		printf("  parent=%s", json_string_value(json_object_get(e, "parent")));
	if (json_is_string(json_object_get(e, "restored_from")))
		printf("  restored_from=%s@%lld", json_string_value(json_object_get(e,
		    "restored_from")), (long long)json_integer_value(json_object_get(e,
		    "restored_at")));
	if (json_array_size(json_object_get(e, "lineage")) > 0)
		printf("  lineage=%zu", json_array_size(json_object_get(e, "lineage")));
	if (json_is_true(json_object_get(e, "suspended")))
		printf("  suspended");
	printf("  generation=%lld\n", (long long)json_integer_value(json_object_get(e,
	    "generation")));
}

/* Print the answer; the exit code. */
static int
sbx_report(const struct sbx_args *a, const char *what, int status, const char *body)
{
	json_t *o = json_loads(body, 0, NULL);
	int rc = status >= 200 && status < 300 ? CLI_OK : CLI_FAIL;

	if (a->json || o == NULL) {
		fputs(body, rc == CLI_OK ? stdout : stderr);
	} else if (rc != CLI_OK) {
		fprintf(stderr, "sealgate sandbox %s: %d %s: %s\n", what, status,
		    json_string_value(json_object_get(o, "error")),
		    json_string_value(json_object_get(o, "message")));
	} else if (strcmp(what, "list") == 0) {
		const json_t *v, *l = json_object_get(o, "sandboxes");
		size_t i;

		json_array_foreach(l, i, v)
			sbx_print_entry(v);
	} else if (strcmp(what, "rm") == 0) {
		printf("deleted %s: its handles are revoked\n",
		    json_string_value(json_object_get(o, "deleted")));
	} else {
		sbx_print_entry(o);
	}
	json_decref(o);
	return rc;
}

static json_t *
sbx_addresses(const struct sbx_args *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < a->naddresses; i++)
		json_array_append_new(arr, json_string(a->addresses[i]));
	return arr;
}

/* The PUT body of `add`; NULL on usage errors (message printed). */
static char *
sbx_add_body(const struct sbx_args *a)
{
	json_t *o = json_object(), *l = json_object();
	const char *tok = a->token_env ? getenv(a->token_env) : NULL;
	char *txt;

	if (o == NULL || l == NULL) {
		json_decref(o);
		json_decref(l);
		return NULL;
	}
	for (size_t i = 0; i < a->nlabels; i++) {
		const char *eq = strchr(a->labels[i], '=');
		char key[REGISTRY_LABEL_KEY_MAX + 1];

		snprintf(key, sizeof(key), "%.*s", (int)(eq - a->labels[i]), a->labels[i]);
		json_object_set_new(l, key, json_string(eq + 1));
	}
	json_object_set_new(o, "template", json_string(a->tmpl));
	json_object_set_new(o, "addresses", sbx_addresses(a));
	json_object_set_new(o, "labels", l);
	if (a->expires != NULL)
		json_object_set_new(o, "expires_at", json_string(a->expires));
	if (tok != NULL)
		json_object_set_new(o, "token", json_string(tok));
	if (a->restored_from != NULL) {
		json_object_set_new(o, "restored_from", json_string(a->restored_from));
		json_object_set_new(o, "at", json_string(a->at));
	}
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return txt;
}

/* The POST body of `fork`: id, addresses, and what the fork changes. */
static char *
sbx_fork_body(const struct sbx_args *a, const char *id)
{
	const char *tok = a->token_env ? getenv(a->token_env) : NULL;
	json_t *o = json_pack("{s:s, s:o}", "id", id, "addresses", sbx_addresses(a));
	char *txt;

	if (o == NULL)
		return NULL;
	if (a->tmpl != NULL)
		json_object_set_new(o, "template", json_string(a->tmpl));
	if (a->expires != NULL)
		json_object_set_new(o, "expires_at", json_string(a->expires));
	if (tok != NULL)
		json_object_set_new(o, "token", json_string(tok));
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return txt;
}

/* One admin request: what the subcommand says. */
struct sbx_req {
	const char *sub, *method;
	char path[256];
	char *body;		/* malloc'd; may hold a proxy token (zeroed when freed) */
};

/* The request of subcommand q->sub with ids ids[0..nids). 0, or -1 (usage). */
static int
sbx_route(const struct sbx_args *a, char **ids, int nids, struct sbx_req *q)
{
	const char *sub = q->sub;

	q->method = "GET";
	if (strcmp(sub, "add") == 0 && nids == 1 && a->tmpl && a->naddresses > 0) {
		q->method = "PUT";
		snprintf(q->path, sizeof(q->path), "/v1/sandboxes/%s", ids[0]);
		q->body = sbx_add_body(a);
	} else if ((strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0) && nids == 0) {
		q->sub = "list";
		snprintf(q->path, sizeof(q->path), "/v1/sandboxes");
	} else if (strcmp(sub, "get") == 0 && nids == 1) {
		snprintf(q->path, sizeof(q->path), "/v1/sandboxes/%s", ids[0]);
	} else if ((strcmp(sub, "rm") == 0 || strcmp(sub, "delete") == 0) && nids == 1) {
		q->sub = "rm";
		q->method = "DELETE";
		snprintf(q->path, sizeof(q->path), "/v1/sandboxes/%s", ids[0]);
	} else if (strcmp(sub, "fork") == 0 && nids == 2 && a->naddresses > 0) {
		q->method = "POST";
		snprintf(q->path, sizeof(q->path), "/v1/sandboxes/%s/fork", ids[0]);
		q->body = sbx_fork_body(a, ids[1]);
	} else if ((strcmp(sub, "suspend") == 0 || strcmp(sub, "resume") == 0) && nids == 1) {
		q->method = "PUT";
		snprintf(q->path, sizeof(q->path), "/v1/sandboxes/%s/%s", ids[0], sub);
		q->body = strdup("");
	} else {
		return -1;
	}
	return 0;
}

/* Parse the command line into a and q. CLI_OK, or the exit code (message printed). */
static int
sbx_args_parse(int argc, char **argv, struct sbx_args *a, struct sbx_req *q)
{
	int nargs;

	q->sub = argv[1];
	/* positional ids come after the subcommand, before the options */
	for (nargs = 0; 2 + nargs < argc && argv[2 + nargs][0] != '-'; nargs++)
		;
	if (sbx_parse(argc - 1 - nargs, argv + 1 + nargs, a) < 0 || optind !=
	    argc - 1 - nargs) {
		fputs(sbx_usage, stderr);
		return CLI_USAGE;
	}
	for (int i = 0; i < nargs; i++)
		if (!registry_id_valid(argv[2 + i])) {
			fprintf(stderr, "sealgate sandbox: bad sandbox id %s\n", argv[2 + i]);
			return CLI_USAGE;
		}
	if ((a->restored_from == NULL) != (a->at == NULL)) {
		fprintf(stderr, "sealgate sandbox: --restored-from and --at go together\n");
		return CLI_USAGE;
	}
	if (sbx_route(a, argv + 2, nargs, q) < 0) {
		fputs(sbx_usage, stderr);
		return CLI_USAGE;
	}
	if (strcmp(q->method, "GET") != 0 && strcmp(q->method, "DELETE") != 0 &&
	    q->body == NULL) {
		fprintf(stderr, "sealgate sandbox: out of memory\n");
		return CLI_FAIL;
	}
	return CLI_OK;
}

int
cmd_sandbox(int argc, char **argv)
{
	struct sbx_args a;
	struct sbx_conn cn;
	struct sbx_req q;
	char *answer = NULL;
	int status = 0, rc;

	memset(&a, 0, sizeof(a));
	memset(&cn, 0, sizeof(cn));
	memset(&q, 0, sizeof(q));
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(sbx_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	if ((rc = sbx_args_parse(argc, argv, &a, &q)) == CLI_OK) {
		rc = CLI_FAIL;
		if (sbx_connect_info(&a, &cn) == 0 &&
		    sbx_http(&cn, q.method, q.path, q.body, &status, &answer) == 0)
			rc = sbx_report(&a, q.sub, status, answer);
	}
	if (q.body != NULL) {
		sodium_memzero(q.body, strlen(q.body));	/* may hold a proxy token */
		free(q.body);
	}
	free(answer);
	secmem_guarded_free(cn.token);
	return rc;
}
