/*  lb_clock.h - monotonic and wall clocks, and a seam for fake time.

    Durations and deadlines use the monotonic clock; timestamps that leave
    the process (journal, PostgreSQL, Redis, logs) use the wall clock. Both
    are in microseconds. Modules that need time take an lb_clock_t from their
    context so tests can drive time by hand (lb_clock_fake).
*/
#ifndef LB_CLOCK_H_INCLUDED
#define LB_CLOCK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Microseconds since an arbitrary fixed point; never goes backwards.
int64_t lb_clock_mono_us (void);

//  Microseconds since the Unix epoch (UTC).
int64_t lb_clock_wall_us (void);

//  Sleeps for us microseconds (resumes after signals until done, unless
//  the sleep is interrupted and *stop becomes true; stop may be NULL).
void lb_clock_sleep_us (int64_t us, volatile const int *stop);

//  Writes wall_us as ISO 8601 UTC with milliseconds ("2026-11-22T01:30:00.123Z")
//  into buf (at least 25 bytes). Returns buf.
char *lb_clock_format_iso (int64_t wall_us, char *buf, size_t size);

//  A clock a module reads through its context.
typedef struct {
    int64_t (*mono_us) (void *arg);
    int64_t (*wall_us) (void *arg);
    void *arg;
} lb_clock_t;

//  Returns the system clock.
lb_clock_t lb_clock_system (void);

//  Fake time for tests: the returned clock reads *fake, which the test moves.
typedef struct {
    int64_t mono_us;
    int64_t wall_us;
} lb_fakeclock_t;
lb_clock_t lb_clock_fake (lb_fakeclock_t *fake);

//  Reads a clock.
static inline int64_t lb_clock_mono (const lb_clock_t *clock) { return clock->mono_us (clock->arg); }
static inline int64_t lb_clock_wall (const lb_clock_t *clock) { return clock->wall_us (clock->arg); }

//  Selftest.
void lb_clock_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
