/*  lb_log.c - leveled, key=value log lines on stderr. */
#include "lb_log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

//  Process-wide logger settings: written once by main before threads start
//  (see the header). Read-only afterwards.
static struct {
    char program [32];
    lb_log_level_t level;
    int fd;
} s_log = { "predictors", LB_LOG_INFO, STDERR_FILENO };

static const char *s_names [] = { "ERROR", "WARN", "INFO", "DEBUG" };

void
lb_log_setup (const char *program, lb_log_level_t level)
{
    assert (program);
    snprintf (s_log.program, sizeof s_log.program, "%s", program);
    s_log.level = level;
}

int
lb_log_setup_fd (int fd)
{
    int previous = s_log.fd;
    s_log.fd = fd;
    return previous;
}

lb_log_level_t
lb_log_set_level (lb_log_level_t level)
{
    lb_log_level_t previous = s_log.level;
    s_log.level = level;
    return previous;
}

int
lb_log_level_parse (const char *name, lb_log_level_t *level)
{
    assert (level);
    if (!name)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp (name, s_names [i]) == 0) {
            *level = (lb_log_level_t) i;
            return 0;
        }
    if (strcasecmp (name, "warning") == 0) {
        *level = LB_LOG_WARN;
        return 0;
    }
    return -1;
}

bool
lb_log_enabled (lb_log_level_t level)
{
    return level <= s_log.level;
}

void
lb_log_write (lb_log_level_t level, const char *file, int line, const char *fmt, ...)
{
    char text [2048];
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    const char *base = strrchr (file, '/');
    base = base ? base + 1 : file;
    int len = snprintf (text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s %s:%d ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec, now.tv_nsec / 1000000, s_log.program, (int) getpid (),
                        s_names [level], base, line);
    if (len < 0)
        return;
    va_list args;
    va_start (args, fmt);
    int more = vsnprintf (text + len, sizeof text - (size_t) len - 1, fmt, args);
    va_end (args);
    if (more < 0)
        more = 0;
    len += more;
    if ((size_t) len > sizeof text - 2) {
        //  Truncated: say so rather than silently cutting.
        len = (int) sizeof text - 6;
        memcpy (text + len, " ...", 4);
        len += 4;
    }
    //  One line per record: a newline inside a message would let outside
    //  input forge log lines, so it becomes a space.
    for (int i = 0; i < len; i++)
        if (text [i] == '\n' || text [i] == '\r')
            text [i] = ' ';
    text [len++] = '\n';
    ssize_t rc = write (s_log.fd, text, (size_t) len);
    (void) rc;
}

void
lb_log_test (bool verbose)
{
    (void) verbose;
    lb_log_level_t level;
    assert (lb_log_level_parse ("debug", &level) == 0 && level == LB_LOG_DEBUG);
    assert (lb_log_level_parse ("WARN", &level) == 0 && level == LB_LOG_WARN);
    assert (lb_log_level_parse ("loud", &level) == -1 && level == LB_LOG_WARN);
    assert (lb_log_level_parse (NULL, &level) == -1);

    int fds [2];
    assert (pipe (fds) == 0);
    int old_fd = lb_log_setup_fd (fds [1]);
    lb_log_level_t old_level = lb_log_set_level (LB_LOG_INFO);
    lb_log_info ("hello key=%d", 7);
    lb_log_debug ("hidden");
    lb_log_warn ("two\nlines");
    lb_log_setup_fd (old_fd);
    lb_log_set_level (old_level);
    close (fds [1]);
    char buf [1024] = { 0 };
    ssize_t got = 0, n;
    while ((n = read (fds [0], buf + got, sizeof buf - 1 - (size_t) got)) > 0)
        got += n;
    close (fds [0]);
    assert (strstr (buf, "INFO lb_log.c:"));
    assert (strstr (buf, "hello key=7\n"));
    assert (!strstr (buf, "hidden"));
    assert (strstr (buf, "WARN lb_log.c:"));
    assert (strstr (buf, "two lines\n"));
}
