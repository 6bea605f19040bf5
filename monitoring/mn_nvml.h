/*  mn_nvml.h - GPU utilisation and memory through NVML, where the host has it.

    NVML (libnvidia-ml.so.1) comes with the NVIDIA driver, not with a package
    we build against, so it is opened at run time (dlopen). On a host
    without it (no driver, no GPU) mn_nvml_new still succeeds and
    mn_nvml_available says false: the monitor then exports
    predictors_nvml_available 0 and no GPU series, rather than zeros that
    would look like idle GPUs.
*/
#ifndef MN_NVML_H_INCLUDED
#define MN_NVML_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mn_metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _mn_nvml_t mn_nvml_t;

//  Opens NVML if present (logs once which it is). Never NULL.
mn_nvml_t *mn_nvml_new (void);

//  Shuts NVML down and destroys. Accepts NULL; sets *self_p to NULL.
void mn_nvml_destroy (mn_nvml_t **self_p);

//  True when NVML was found and initialised.
bool mn_nvml_available (mn_nvml_t *self);

//  Reads up to max GPUs into gpus. Returns how many (0 without NVML).
size_t mn_nvml_read (mn_nvml_t *self, mn_gpu_t *gpus, size_t max);

//  Selftest.
void mn_nvml_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
