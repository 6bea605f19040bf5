/*  wk_tprobe.c - test support for the trainers (see wk_tprobe.h). */
#include "wk_tprobe.h"
#include "wk_tparams.h"
#include "lb_mem.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
wk_tprobe_progress (void *arg, const wk_tprogress_t *p)
{
    wk_tprobe_t *probe = arg;
    assert (p->step >= 0 && p->step <= p->steps);
    assert (p->percent >= 0 && p->percent <= 100);
    probe->progress++;
}

int
wk_tprobe_checkpoint (void *arg, const uint8_t *data, size_t size)
{
    wk_tprobe_t *probe = arg;
    free (probe->ckpt);
    probe->ckpt = lb_xmalloc (size);
    memcpy (probe->ckpt, data, size);
    probe->ckpt_size = size;
    probe->checkpoints++;
    return 0;
}

bool
wk_tprobe_stopping (void *arg)
{
    wk_tprobe_t *probe = arg;
    return probe->stop_after && ++probe->stop_calls > probe->stop_after;
}

void
wk_tprobe_release (wk_tprobe_t *probe)
{
    free (probe->ckpt);
    memset (probe, 0, sizeof *probe);
}

lb_model_t *
wk_tprobe_train (wk_tprobe_fn *train, lb_model_family_t family, const wk_tdata_t *data,
                 const char *const *names, const char *const *values, size_t count,
                 const wk_tctx_t *ctx, wk_tresult_t want)
{
    char err [512] = "";
    json_t *params = wk_tparams_resolve (family, names, values, count, err, sizeof err);
    assert (params);
    lb_model_t *model = NULL;
    wk_tresult_t rc = train (family, data, params, ctx, &model, err, sizeof err);
    if (rc != want)
        fprintf (stderr, "%s: got %d, wanted %d: %s\n", lb_model_family_name (family), rc, want, err);
    assert (rc == want);
    assert ((model != NULL) == (rc == WK_T_OK));
    json_decref (params);
    return model;
}

void
wk_tprobe_test (bool verbose)
{
    if (verbose)
        printf (" * wk_tprobe: ");
    wk_tprobe_t probe = { .stop_after = 2 };
    assert (!wk_tprobe_stopping (&probe) && !wk_tprobe_stopping (&probe));
    assert (wk_tprobe_stopping (&probe));
    uint8_t bytes [3] = { 1, 2, 3 };
    assert (wk_tprobe_checkpoint (&probe, bytes, 3) == 0);
    assert (probe.checkpoints == 1 && probe.ckpt_size == 3 && probe.ckpt [2] == 3);
    wk_tprogress_t p = { .unit = "round", .step = 1, .steps = 2, .percent = 50 };
    wk_tprobe_progress (&probe, &p);
    assert (probe.progress == 1);
    wk_tprobe_release (&probe);
    assert (!probe.ckpt && probe.checkpoints == 0);
    if (verbose)
        printf ("OK\n");
}
