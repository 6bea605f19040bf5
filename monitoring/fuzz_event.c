/*  fuzz_event.c - libFuzzer target: the monitor's decoders of outside input
    (broker events, mmi.* replies) must refuse garbage without crashing,
    leaking or reading out of bounds. Input: topic, a 0 byte, then the body. */
#include "mn_event.h"
#include "mn_mmi.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr (data, 0, size);
    size_t tlen = nul? (size_t) (nul - data): 0;
    const uint8_t *body = nul? nul + 1: data;
    size_t blen = nul? size - tlen - 1: size;
    char err [200];
    mn_event_t event;
    mn_event_decode ((const char *) data, tlen, body, blen, &event, err, sizeof err);
    mn_snapshot_t snap = { 0 };
    mn_mmi_decode_queues (body, blen, &snap, err, sizeof err);
    mn_mmi_decode_workers (body, blen, &snap, err, sizeof err);
    mn_mmi_decode_dead (body, blen, &snap, err, sizeof err);
    mn_mmi_decode_stats (body, blen, &snap, err, sizeof err);
    mn_snapshot_release (&snap);
    mn_mmi_job_t job;
    mn_mmi_decode_job (body, blen, &job, err, sizeof err);
    return 0;
}
