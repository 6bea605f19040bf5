/*  lb_mem.h - allocation that aborts on out-of-memory (STYLE.md section 4).

    Every allocation in Predictors goes through these. On failure they log
    one line and abort(): there are no per-call OOM paths anywhere else.
*/
#ifndef LB_MEM_H_INCLUDED
#define LB_MEM_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Returns size bytes, never NULL (size 0 gives a unique pointer). Caller frees.
void *lb_xmalloc (size_t size);

//  Returns nmemb * size zeroed bytes, never NULL; aborts on overflow. Caller frees.
void *lb_xcalloc (size_t nmemb, size_t size);

//  Resizes ptr (may be NULL) to size bytes, never NULL. Caller frees the result.
void *lb_xrealloc (void *ptr, size_t size);

//  Returns a copy of s (which must not be NULL). Caller frees.
char *lb_xstrdup (const char *s);

//  Returns a copy of at most n bytes of s, NUL-terminated. Caller frees.
char *lb_xstrndup (const char *s, size_t n);

//  Returns a newly formatted string. Caller frees.
char *lb_xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

//  Same with a va_list.
char *lb_xvasprintf (const char *fmt, va_list args);

//  Selftest.
void lb_mem_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
