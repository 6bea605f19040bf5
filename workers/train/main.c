/*  worker-train - trains one model per job (placeholder main until the
    worker runtime lands; see docs/train.md). */
#include <stdio.h>

int
main (void)
{
    fprintf (stderr, "worker-train: the worker runtime is not wired in yet\n");
    return 1;
}
