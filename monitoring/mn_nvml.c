/*  mn_nvml.c - NVML through dlopen (the few calls we need, declared as NVML's
    public API documents them: nvmlInit_v2, nvmlDeviceGetCount_v2,
    nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetUtilizationRates,
    nvmlDeviceGetMemoryInfo, nvmlDeviceGetName, nvmlShutdown). */
#include "mn_nvml.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *s_device_t;
typedef struct { unsigned int gpu, memory; } s_util_t;
typedef struct { unsigned long long total, free, used; } s_mem_t;

struct _mn_nvml_t {
    void *lib;
    bool ok;
    int (*init) (void);
    int (*shutdown) (void);
    int (*count) (unsigned int *);
    int (*handle) (unsigned int, s_device_t *);
    int (*util) (s_device_t, s_util_t *);
    int (*mem) (s_device_t, s_mem_t *);
    int (*name) (s_device_t, char *, unsigned int);
};

mn_nvml_t *
mn_nvml_new (void)
{
    mn_nvml_t *self = lb_xcalloc (1, sizeof *self);
    self->lib = dlopen ("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!self->lib) {
        lb_log_info ("NVML not found (no NVIDIA driver on this host): no GPU metrics");
        return self;
    }
    *(void **) &self->init = dlsym (self->lib, "nvmlInit_v2");
    *(void **) &self->shutdown = dlsym (self->lib, "nvmlShutdown");
    *(void **) &self->count = dlsym (self->lib, "nvmlDeviceGetCount_v2");
    *(void **) &self->handle = dlsym (self->lib, "nvmlDeviceGetHandleByIndex_v2");
    *(void **) &self->util = dlsym (self->lib, "nvmlDeviceGetUtilizationRates");
    *(void **) &self->mem = dlsym (self->lib, "nvmlDeviceGetMemoryInfo");
    *(void **) &self->name = dlsym (self->lib, "nvmlDeviceGetName");
    if (!self->init || !self->shutdown || !self->count || !self->handle || !self->util || !self->mem
    ||  !self->name) {
        lb_log_warn ("NVML found but lacks a function we need: no GPU metrics");
        return self;
    }
    int rc = self->init ();
    if (rc != 0) {
        lb_log_warn ("nvmlInit failed (NVML error %d): no GPU metrics", rc);
        return self;
    }
    self->ok = true;
    unsigned int n = 0;
    self->count (&n);
    lb_log_info ("NVML initialised gpus=%u", n);
    return self;
}

void
mn_nvml_destroy (mn_nvml_t **self_p)
{
    assert (self_p);
    mn_nvml_t *self = *self_p;
    if (!self)
        return;
    if (self->ok)
        self->shutdown ();
    if (self->lib)
        dlclose (self->lib);
    free (self);
    *self_p = NULL;
}

bool
mn_nvml_available (mn_nvml_t *self)
{
    return self->ok;
}

size_t
mn_nvml_read (mn_nvml_t *self, mn_gpu_t *gpus, size_t max)
{
    if (!self->ok)
        return 0;
    unsigned int n = 0;
    if (self->count (&n) != 0)
        return 0;
    size_t got = 0;
    for (unsigned int i = 0; i < n && got < max; i++) {
        s_device_t dev;
        s_util_t util;
        s_mem_t mem;
        if (self->handle (i, &dev) || self->util (dev, &util) || self->mem (dev, &mem))
            continue;
        mn_gpu_t *g = &gpus [got++];
        memset (g, 0, sizeof *g);
        g->index = (int) i;
        if (self->name (dev, g->name, sizeof g->name))
            snprintf (g->name, sizeof g->name, "gpu%u", i);
        g->util_ratio = util.gpu / 100.0;
        g->mem_used_bytes = (double) mem.used;
        g->mem_total_bytes = (double) mem.total;
    }
    return got;
}

void
mn_nvml_test (bool verbose)
{
    mn_nvml_t *nvml = mn_nvml_new ();
    mn_gpu_t gpus [16];
    size_t n = mn_nvml_read (nvml, gpus, 16);
    if (!mn_nvml_available (nvml))
        assert (n == 0);
    for (size_t i = 0; i < n; i++) {
        assert (gpus [i].util_ratio >= 0 && gpus [i].util_ratio <= 1);
        assert (gpus [i].mem_total_bytes > 0);
        if (verbose)
            lb_log_info ("gpu=%d name=%s util=%.2f mem=%.0f/%.0f", gpus [i].index, gpus [i].name, gpus [i].util_ratio,
                    gpus [i].mem_used_bytes, gpus [i].mem_total_bytes);
    }
    mn_nvml_destroy (&nvml);
    mn_nvml_destroy (&nvml);
}
