/*  lb_log.h - the one way Predictors writes log lines (STYLE.md section 5).

    A line looks like
        2026-11-22T01:30:00.123Z broker[4242] INFO bk_main.c:88 listening bind=tcp://127.0.0.1:5555
    and goes to stderr (or the fd chosen by lb_log_setup_fd) in one write(2),
    so lines from threads never interleave. The level test comes before any
    formatting. Fields are key=value.

    The logger's settings (program name, level, fd) are the one process-wide
    state in Predictors besides the signal flag: main sets them once, before
    it starts threads, and nothing changes them afterwards.
*/
#ifndef LB_LOG_H_INCLUDED
#define LB_LOG_H_INCLUDED

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LB_LOG_ERROR = 0,
    LB_LOG_WARN  = 1,
    LB_LOG_INFO  = 2,
    LB_LOG_DEBUG = 3
} lb_log_level_t;

//  Sets the program name shown on every line and the most verbose level
//  written. Call once from main.
void lb_log_setup (const char *program, lb_log_level_t level);

//  Sends lines to fd instead of stderr (tests capture logs with a pipe).
//  Returns the previous fd.
int lb_log_setup_fd (int fd);

//  Changes the level only. Returns the previous level.
lb_log_level_t lb_log_set_level (lb_log_level_t level);

//  Parses "error", "warn", "info" or "debug" into *level. Returns 0, or -1
//  if name is none of them (*level unchanged).
int lb_log_level_parse (const char *name, lb_log_level_t *level);

//  Returns true when lines at level are written.
bool lb_log_enabled (lb_log_level_t level);

//  Writes one line. Use the macros below, which add file and line and skip
//  formatting when the level is off.
void lb_log_write (lb_log_level_t level, const char *file, int line, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

#define LB_LOG_AT(lvl, ...) \
    do { if (lb_log_enabled (lvl)) lb_log_write ((lvl), __FILE__, __LINE__, __VA_ARGS__); } while (0)
#define lb_log_error(...) LB_LOG_AT (LB_LOG_ERROR, __VA_ARGS__)
#define lb_log_warn(...)  LB_LOG_AT (LB_LOG_WARN, __VA_ARGS__)
#define lb_log_info(...)  LB_LOG_AT (LB_LOG_INFO, __VA_ARGS__)
#define lb_log_debug(...) LB_LOG_AT (LB_LOG_DEBUG, __VA_ARGS__)

//  Selftest.
void lb_log_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
