/*  lb_clock.c - monotonic and wall clocks. */
#include "lb_clock.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t
lb_clock_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
lb_clock_wall_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
lb_clock_sleep_us (int64_t us, volatile const int *stop)
{
    if (us <= 0)
        return;
    struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
    while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
        if (stop && *stop)
            return;
}

char *
lb_clock_format_iso (int64_t wall_us, char *buf, size_t size)
{
    assert (buf && size >= 25);
    time_t secs = (time_t) (wall_us / 1000000);
    int millis = (int) ((wall_us % 1000000) / 1000);
    if (wall_us < 0 && wall_us % 1000000) {
        secs -= 1;
        millis = (int) ((1000000 + wall_us % 1000000) / 1000);
    }
    struct tm tm;
    gmtime_r (&secs, &tm);
    snprintf (buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    return buf;
}

static int64_t
s_sys_mono (void *arg)
{
    (void) arg;
    return lb_clock_mono_us ();
}

static int64_t
s_sys_wall (void *arg)
{
    (void) arg;
    return lb_clock_wall_us ();
}

lb_clock_t
lb_clock_system (void)
{
    return (lb_clock_t) { s_sys_mono, s_sys_wall, NULL };
}

static int64_t
s_fake_mono (void *arg)
{
    return ((lb_fakeclock_t *) arg)->mono_us;
}

static int64_t
s_fake_wall (void *arg)
{
    return ((lb_fakeclock_t *) arg)->wall_us;
}

lb_clock_t
lb_clock_fake (lb_fakeclock_t *fake)
{
    assert (fake);
    return (lb_clock_t) { s_fake_mono, s_fake_wall, fake };
}

void
lb_clock_test (bool verbose)
{
    (void) verbose;
    int64_t a = lb_clock_mono_us ();
    lb_clock_sleep_us (2000, NULL);
    int64_t b = lb_clock_mono_us ();
    assert (b - a >= 2000);
    assert (lb_clock_wall_us () > (int64_t) 1700000000 * 1000000);

    char buf [32];
    assert (strcmp (lb_clock_format_iso (0, buf, sizeof buf), "1970-01-01T00:00:00.000Z") == 0);
    //  2024-02-29T12:34:56.789Z, a leap day.
    assert (strcmp (lb_clock_format_iso (INT64_C (1709210096789000), buf, sizeof buf),
                    "2024-02-29T12:34:56.789Z") == 0);
    assert (strcmp (lb_clock_format_iso (-1000, buf, sizeof buf), "1969-12-31T23:59:59.999Z") == 0);

    lb_fakeclock_t fake = { 100, 200 };
    lb_clock_t clock = lb_clock_fake (&fake);
    assert (lb_clock_mono (&clock) == 100 && lb_clock_wall (&clock) == 200);
    fake.mono_us += 5;
    assert (lb_clock_mono (&clock) == 105);
    lb_clock_t sys = lb_clock_system ();
    assert (lb_clock_mono (&sys) >= b);
}
