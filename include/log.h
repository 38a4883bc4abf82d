/*
 * log.h — operational log: leveled, __func__-prefixed, to stderr.
 * Never pass a secret to these functions; handles are logged by id only.
 */
#ifndef SEALGATE_LOG_H
#define SEALGATE_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Set the most verbose level printed (default INFO). Not thread-safe: call at startup. */
void log_set_level(enum log_level lvl);
/* Parse "error|warn|info|debug"; -1 when unknown. */
int log_parse_level(const char *s);

void log_msg(enum log_level lvl, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...)   log_msg(LOG_LVL_ERROR, __func__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __func__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __func__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __func__, __VA_ARGS__)

#endif
