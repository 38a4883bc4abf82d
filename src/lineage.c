/* lineage.c — fork and restore lineage: derive a copy's links, decide which handles came
 * with it. */
#include <stdlib.h>
#include <string.h>

#include "lineage.h"

void
lineage_free(lineage_t *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->links[i].id);
	free(l->links);
	l->links = NULL;
	l->n = 0;
}

const lineage_link_t *
lineage_find(const lineage_t *l, const char *sb)
{
	for (size_t i = 0; l != NULL && i < l->n; i++)
		if (strcmp(l->links[i].id, sb) == 0)
			return &l->links[i];
	return NULL;
}

const lineage_link_t *
lineage_accepts(const lineage_t *l, const char *sb, int64_t iat)
{
	const lineage_link_t *k = lineage_find(l, sb);

	return k != NULL && iat <= k->at ? k : NULL;
}

/* Room for one more link (LINEAGE_MAX_DEPTH at most). */
static int
lineage_grow(lineage_t *l)
{
	lineage_link_t *nl;

	if (l->n >= LINEAGE_MAX_DEPTH)
		return LINEAGE_E_DEPTH;
	if ((nl = realloc(l->links, (l->n + 1) * sizeof(*nl))) == NULL)
		return LINEAGE_E_NOMEM;
	l->links = nl;
	return LINEAGE_OK;
}

int
lineage_append(lineage_t *l, const char *id, int64_t at)
{
	int rc;

	if (id[0] == '\0' || at <= 0)
		return LINEAGE_E_INVALID;
	if (lineage_find(l, id) != NULL)
		return LINEAGE_OK;
	if ((rc = lineage_grow(l)) != LINEAGE_OK)
		return rc;
	if ((l->links[l->n].id = strdup(id)) == NULL)
		return LINEAGE_E_NOMEM;
	l->links[l->n++].at = at;
	return LINEAGE_OK;
}

int
lineage_derive(const lineage_t *from, const char *from_id, int64_t at, lineage_t *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = lineage_append(out, from_id, at);
	for (size_t i = 0; rc == LINEAGE_OK && from != NULL && i < from->n; i++) {
		const lineage_link_t *k = &from->links[i];

		/* what from held of k's handles at `at`: those minted by k->at, and no later */
		rc = lineage_append(out, k->id, k->at < at ? k->at : at);
	}
	if (rc != LINEAGE_OK)
		lineage_free(out);
	return rc;
}

int
lineage_copy(const lineage_t *from, lineage_t *out)
{
	int rc = LINEAGE_OK;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; rc == LINEAGE_OK && from != NULL && i < from->n; i++)
		rc = lineage_append(out, from->links[i].id, from->links[i].at);
	if (rc != LINEAGE_OK)
		lineage_free(out);
	return rc;
}

bool
lineage_equal(const lineage_t *a, const lineage_t *b)
{
	size_t na = a ? a->n : 0, nb = b ? b->n : 0;

	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a->links[i].at != b->links[i].at ||
		    strcmp(a->links[i].id, b->links[i].id) != 0)
			return false;
	return true;
}
