/*  lb_mem.c - allocation that aborts on out-of-memory. */
#include "lb_mem.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
s_die (size_t size)
{
    //  No allocation here: we are out of memory.
    char line [96];
    int len = snprintf (line, sizeof line, "fatal: out of memory allocating %zu bytes\n", size);
    if (len > 0 && write (STDERR_FILENO, line, (size_t) len) < 0)
        len = 0;
    abort ();
}

void *
lb_xmalloc (size_t size)
{
    void *ptr = malloc (size ? size : 1);
    if (!ptr)
        s_die (size);
    return ptr;
}

void *
lb_xcalloc (size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        s_die (SIZE_MAX);
    void *ptr = calloc (nmemb ? nmemb : 1, size ? size : 1);
    if (!ptr)
        s_die (nmemb * size);
    return ptr;
}

void *
lb_xrealloc (void *ptr, size_t size)
{
    void *grown = realloc (ptr, size ? size : 1);
    if (!grown)
        s_die (size);
    return grown;
}

char *
lb_xstrdup (const char *s)
{
    assert (s);
    return lb_xstrndup (s, strlen (s));
}

char *
lb_xstrndup (const char *s, size_t n)
{
    assert (s);
    size_t len = strnlen (s, n);
    char *copy = lb_xmalloc (len + 1);
    memcpy (copy, s, len);
    copy [len] = 0;
    return copy;
}

char *
lb_xvasprintf (const char *fmt, va_list args)
{
    va_list copy;
    va_copy (copy, args);
    int len = vsnprintf (NULL, 0, fmt, copy);
    va_end (copy);
    assert (len >= 0);
    char *text = lb_xmalloc ((size_t) len + 1);
    vsnprintf (text, (size_t) len + 1, fmt, args);
    return text;
}

char *
lb_xasprintf (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = lb_xvasprintf (fmt, args);
    va_end (args);
    return text;
}

void
lb_mem_test (bool verbose)
{
    (void) verbose;
    char *s = lb_xstrdup ("hello");
    assert (strcmp (s, "hello") == 0);
    s = lb_xrealloc (s, 64);
    assert (strcmp (s, "hello") == 0);
    free (s);
    s = lb_xstrndup ("abcdef", 3);
    assert (strcmp (s, "abc") == 0);
    free (s);
    s = lb_xasprintf ("%s=%d", "n", 42);
    assert (strcmp (s, "n=42") == 0);
    free (s);
    int *z = lb_xcalloc (16, sizeof (int));
    for (int i = 0; i < 16; i++)
        assert (z [i] == 0);
    free (z);
    free (lb_xmalloc (0));
}
