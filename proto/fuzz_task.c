/*  fuzz_task.c - libFuzzer target for the task spec parser (pr_task) and the
    source URI parser (lb_netpolicy_parse): any bytes are refused with a
    message or accepted; what is accepted writes back to JSON that parses to
    the same task (same canonical text, same fingerprint).
*/
#include "lb_mem.h"
#include "lb_netpolicy.h"
#include "pr_task.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *error = NULL;
    pr_task_t *task = pr_task_from_json ((const char *) data, size, &error);
    if (task) {
        assert (!error);
        char *json = pr_task_to_json (task);
        pr_task_t *again = pr_task_from_json (json, strlen (json), NULL);
        assert (again);
        char *json2 = pr_task_to_json (again);
        assert (strcmp (json, json2) == 0);
        assert (strcmp (task->fingerprint, again->fingerprint) == 0);
        free (json);
        free (json2);
        pr_task_destroy (&again);
        pr_task_destroy (&task);
    }
    else {
        assert (error && *error);
        free (error);
    }
    //  The same bytes as a source URI.
    char *uri = lb_xstrndup ((const char *) data, size);
    lb_source_uri_t parsed;
    error = NULL;
    if (lb_netpolicy_parse (uri, &parsed, &error) == 0)
        lb_source_uri_release (&parsed);
    else
        free (error);
    free (uri);
    return 0;
}
