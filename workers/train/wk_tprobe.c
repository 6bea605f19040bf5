/*  wk_tprobe.c - test support for the trainers (see wk_tprobe.h). */
#include "wk_tprobe.h"
#include "wk_tparams.h"
#include "lb_mem.h"
#include "kn_backend.h"
#include "pr_rank.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

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

// ---------------------------------------------------------------- a test all-reduce
//
//  Stands in for NCCL in selftests only, so that the group logic (shards,
//  agreement, rank 0's model, a lost rank, deadlines) runs where there is no
//  GPU. worker-train never trains this way: on the CPU a job is one rank.

struct wk_tprobe_net_s {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int nranks;
    float **slots;                  //  each rank's buffer while it waits
    size_t n;
    int arrived;
    unsigned long generation;
    int timeout_ms;
    int fail_rank, fail_after;      //  that rank's all-reduce fails after that many calls
    int calls [PR_RANK_MAX];
    bool broken;                    //  a rank gave up: every later call fails at once
};

typedef struct {
    kn_backend_t be;                //  a copy of the CPU backend's table: first member
    kn_backend_t *cpu;
    wk_tprobe_net_t *net;
} s_net_rank_t;

static void
s_deadline (struct timespec *ts, int ms)
{
    clock_gettime (CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long) (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int
s_net_allreduce (kn_backend_t *self, float *buf, size_t n)
{
    s_net_rank_t *tr = (s_net_rank_t *) self;
    wk_tprobe_net_t *net = tr->net;
    int rank = self->rank;
    pthread_mutex_lock (&net->lock);
    if (rank == net->fail_rank && ++net->calls [rank] > net->fail_after)
        net->broken = true;         //  this rank dies here
    if (net->broken) {
        pthread_mutex_unlock (&net->lock);
        snprintf (self->error, sizeof self->error, "all-reduce: a rank was lost");
        return -1;
    }
    unsigned long gen = net->generation;
    net->slots [rank] = buf;
    net->n = n;
    if (++net->arrived == net->nranks) {
        //  The last one in averages, in rank order, into every buffer.
        for (size_t i = 0; i < n; i++) {
            double sum = 0;
            for (int r = 0; r < net->nranks; r++)
                sum += net->slots [r][i];
            float mean = (float) (sum / net->nranks);
            for (int r = 0; r < net->nranks; r++)
                net->slots [r][i] = mean;
        }
        net->arrived = 0;
        net->generation++;
        pthread_cond_broadcast (&net->cond);
        pthread_mutex_unlock (&net->lock);
        return 0;
    }
    struct timespec until;
    s_deadline (&until, net->timeout_ms);
    while (net->generation == gen && !net->broken)
        if (pthread_cond_timedwait (&net->cond, &net->lock, &until) == ETIMEDOUT)
            break;
    int rc = net->generation != gen ? 0 : -1;
    if (rc) {
        net->broken = true;
        pthread_cond_broadcast (&net->cond);
        snprintf (self->error, sizeof self->error, "all-reduce: no progress within %d ms (a rank was "
                  "lost?)", net->timeout_ms);
    }
    pthread_mutex_unlock (&net->lock);
    return rc;
}

static void
s_net_destroy (kn_backend_t **self_p)
{
    s_net_rank_t *tr = (s_net_rank_t *) *self_p;
    kn_backend_destroy (&tr->cpu);
    free (tr);
    *self_p = NULL;
}

kn_backend_t *
wk_tprobe_net_make (void *arg, int rank, char *why, size_t why_size)
{
    wk_tprobe_net_t *net = arg;
    assert (net && rank >= 0 && rank < net->nranks);
    if (net->fail_rank == rank && net->fail_after < 0) {
        snprintf (why, why_size, "no device for this rank (test)");
        return NULL;
    }
    s_net_rank_t *tr = lb_xcalloc (1, sizeof *tr);
    tr->cpu = kn_cpu_new (1);
    tr->be = *tr->cpu;
    tr->be.destroy = s_net_destroy;
    tr->be.allreduce_mean = s_net_allreduce;
    tr->be.nranks = net->nranks;
    tr->be.rank = rank;
    tr->net = net;
    return &tr->be;
}

wk_tprobe_net_t *
wk_tprobe_net_new (int nranks, int fail_rank, int fail_after, int timeout_ms)
{
    assert (nranks >= 1 && nranks <= PR_RANK_MAX && timeout_ms > 0);
    wk_tprobe_net_t *net = lb_xcalloc (1, sizeof *net);
    pthread_mutex_init (&net->lock, NULL);
    pthread_cond_init (&net->cond, NULL);
    net->nranks = nranks;
    net->slots = lb_xcalloc ((size_t) nranks, sizeof *net->slots);
    net->timeout_ms = timeout_ms;
    net->fail_rank = fail_rank;
    net->fail_after = fail_after;
    return net;
}

void
wk_tprobe_net_destroy (wk_tprobe_net_t **self_p)
{
    wk_tprobe_net_t *net = *self_p;
    if (!net)
        return;
    pthread_mutex_destroy (&net->lock);
    pthread_cond_destroy (&net->cond);
    free (net->slots);
    free (net);
    *self_p = NULL;
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
