/* stats.c — the process-wide counters (stats.h); core, so core modules can count. */
#include "stats.h"

struct sg_stats sg_stats;
