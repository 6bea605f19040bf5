/*  fuzz_mdp.c - libFuzzer target for pr_mdp_parse (Majordomo frames).

    Input: frames, each a length byte followed by that many bytes (a short
    last frame takes what is left).
*/
#include "pr_mdp.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    pr_frame_t frames [64];
    size_t count = 0, at = 0;
    while (at < size && count < 64) {
        size_t len = data [at++];
        if (len > size - at)
            len = size - at;
        frames [count].data = data + at;
        frames [count].size = len;
        count++;
        at += len;
    }
    pr_mdp_msg_t m;
    const char *why = NULL;
    int rc = pr_mdp_parse (frames, count, &m, &why);
    if (rc == PR_MDP_OK) {
        assert (m.version == 1 || m.version == 2);
        assert (m.body + m.nbody <= count || m.nbody == 0);
        if (m.command == PR_MDP_READY)
            assert (pr_mdp_service_valid (m.service.data, m.service.size));
    }
    else
        assert (why != NULL);
    return 0;
}
