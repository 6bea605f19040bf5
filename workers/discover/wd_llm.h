/*  wd_llm.h - a conversation with the Anthropic Messages API that must end in
    one JSON object matching a schema.

    POST {base_url}/v1/messages with x-api-key, anthropic-version and
    content-type: application/json. JSON is forced either by a forced tool
    call (tools: [{name, description, input_schema}], tool_choice {type: tool,
    name}; the object is the tool_use block's input) or by structured output
    (output_config: {format: {type: json_schema, schema}}; the object is the
    text of the reply).

    One call is retried as the API asks: 429 waits for retry-after (capped by
    backoff_max; the backoff when absent); 529, other 5xx, transport failures
    and malformed 200 bodies back off exponentially with full jitter; 400,
    401, 403, 404 and 413 fail at once with the API's own error type and
    message. The key is sent in a header only: it never appears in a log
    line, an error text or an output (any echo of it is redacted).
*/
#ifndef WD_LLM_H_INCLUDED
#define WD_LLM_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *base_url;           //  "https://api.anthropic.com"
    const char *api_key;
    const char *model;
    const char *version;            //  anthropic-version
    int max_tokens;
    bool structured;                //  output_config json_schema instead of a forced tool
    const char *tool_name;          //  "propose_task"
    const char *tool_description;
    const char *schema;             //  JSON schema text
    int retries;                    //  retries of one call (429, 529, 5xx, transport)
    double backoff;                 //  seconds, first backoff
    double backoff_max;             //  seconds, longest single wait
    double connect_timeout;         //  seconds
    double timeout;                 //  seconds, whole call
    uint64_t seed;                  //  jitter; 0: from time and pid
    //  Test seam: called instead of sleeping (NULL: really sleep).
    void (*sleep_fn) (void *arg, double seconds);
    void *sleep_arg;
    volatile const int *stop;       //  interrupts waits when non-zero (may be NULL)
} wd_llm_config_t;

typedef enum {
    WD_LLM_OK = 0,
    WD_LLM_TRANSIENT = -1,          //  retries exhausted on 429/5xx/transport: worth a later retry
    WD_LLM_PERMANENT = -2,          //  4xx, refusal: retrying will not help
    WD_LLM_NO_OUTPUT = -3           //  the reply holds no JSON object (give feedback and ask again)
} wd_llm_rc_t;

typedef struct _wd_llm_t wd_llm_t;

//  Returns a client for cfg (strings copied). Never NULL.
wd_llm_t *wd_llm_new (const wd_llm_config_t *cfg);

//  Destroys the client. Accepts NULL; sets *self_p to NULL.
void wd_llm_destroy (wd_llm_t **self_p);

//  Starts a new conversation with a system prompt and the first user turn.
void wd_llm_start (wd_llm_t *self, const char *system, const char *user);

//  Sends the conversation. On WD_LLM_OK sets *output to the object's JSON
//  text (caller frees) and records the reply in the conversation. Otherwise
//  sets *error_p (caller frees) to what happened, with the status, the API's
//  error type and message and its request-id.
wd_llm_rc_t wd_llm_ask (wd_llm_t *self, char **output, char **error_p);

//  Answers the last reply with feedback (a validation error, a novelty
//  rejection): a tool_result with is_error for a tool call, else a user turn.
void wd_llm_feedback (wd_llm_t *self, const char *text);

//  HTTP requests sent so far, and seconds waited between retries.
int wd_llm_requests (wd_llm_t *self);
double wd_llm_waited (wd_llm_t *self);

//  Replaces every occurrence of the key in text (in place; same length or
//  shorter). Returns text.
char *wd_llm_redact (wd_llm_t *self, char *text);

//  Selftest.
void wd_llm_test (bool verbose);

#endif
