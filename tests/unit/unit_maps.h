/*
 * unit_maps.h — memory-mapping count for unit tests (include after cmocka.h and
 * stdio.h): what a sodium_malloc-heavy change costs in mappings, against the kernel's
 * vm.max_map_count.
 */
#ifndef SEALGATE_UNIT_MAPS_H
#define SEALGATE_UNIT_MAPS_H

/* Lines of /proc/self/maps: one per mapping. */
static inline size_t
unit_count_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	size_t n = 0;
	int ch;

	assert_non_null(f);
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

#endif
