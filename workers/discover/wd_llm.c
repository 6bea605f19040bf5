/*  wd_llm.c - the Anthropic Messages API client (see wd_llm.h). */
#include "wd_llm.h"
#include "lb_clock.h"
#include "lb_http.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <arpa/inet.h>
#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct _wd_llm_t {
    wd_llm_config_t cfg;            //  strings below are our copies
    char *base_url, *api_key, *model, *version, *tool_name, *tool_description, *schema;
    json_t *schema_json;
    char *system;
    json_t *messages;               //  the conversation
    char *last_tool_id;             //  id of the last tool_use, or NULL
    uint64_t rng;
    int requests;
    double waited;
};

static char *
s_dup (const char *text)
{
    return text ? lb_xstrdup (text) : NULL;
}

wd_llm_t *
wd_llm_new (const wd_llm_config_t *cfg)
{
    assert (cfg && cfg->base_url && cfg->api_key && cfg->model && cfg->version && cfg->schema);
    wd_llm_t *self = lb_xcalloc (1, sizeof *self);
    self->cfg = *cfg;
    self->base_url = s_dup (cfg->base_url);
    size_t len = strlen (self->base_url);
    while (len && self->base_url [len - 1] == '/')
        self->base_url [--len] = 0;
    self->api_key = s_dup (cfg->api_key);
    self->model = s_dup (cfg->model);
    self->version = s_dup (cfg->version);
    self->tool_name = s_dup (cfg->tool_name ? cfg->tool_name : "propose_task");
    self->tool_description = s_dup (cfg->tool_description ? cfg->tool_description
                                    : "Propose one prediction task as a task spec.");
    self->schema = s_dup (cfg->schema);
    self->schema_json = json_loads (self->schema, 0, NULL);
    assert (self->schema_json);     //  our own schema: a bad one is our bug
    self->messages = json_array ();
    self->rng = cfg->seed ? cfg->seed : (uint64_t) lb_clock_wall_us () ^ ((uint64_t) getpid () << 32);
    if (self->cfg.max_tokens <= 0)
        self->cfg.max_tokens = 4096;
    return self;
}

void
wd_llm_destroy (wd_llm_t **self_p)
{
    assert (self_p);
    wd_llm_t *self = *self_p;
    if (!self)
        return;
    if (self->api_key)
        memset (self->api_key, 0, strlen (self->api_key));
    free (self->base_url);
    free (self->api_key);
    free (self->model);
    free (self->version);
    free (self->tool_name);
    free (self->tool_description);
    free (self->schema);
    json_decref (self->schema_json);
    free (self->system);
    json_decref (self->messages);
    free (self->last_tool_id);
    free (self);
    *self_p = NULL;
}

char *
wd_llm_redact (wd_llm_t *self, char *text)
{
    assert (self);
    if (!text || !self->api_key || strlen (self->api_key) < 4)
        return text;
    size_t klen = strlen (self->api_key);
    static const char mask [] = "[redacted]";
    char *at;
    while ((at = strstr (text, self->api_key))) {
        size_t mlen = klen < sizeof mask - 1 ? klen : sizeof mask - 1;
        memcpy (at, mask, mlen);
        memmove (at + mlen, at + klen, strlen (at + klen) + 1);
    }
    return text;
}

void
wd_llm_start (wd_llm_t *self, const char *system, const char *user)
{
    assert (self && system && user);
    free (self->system);
    self->system = lb_xstrdup (system);
    json_array_clear (self->messages);
    json_array_append_new (self->messages, json_pack ("{s:s, s:s}", "role", "user", "content", user));
    free (self->last_tool_id);
    self->last_tool_id = NULL;
}

void
wd_llm_feedback (wd_llm_t *self, const char *text)
{
    assert (self && text);
    json_t *content;
    if (self->last_tool_id)
        content = json_pack ("[{s:s, s:s, s:b, s:s}]", "type", "tool_result", "tool_use_id",
                             self->last_tool_id, "is_error", 1, "content", text);
    else
        content = json_pack ("[{s:s, s:s}]", "type", "text", "text", text);
    json_array_append_new (self->messages, json_pack ("{s:s, s:o}", "role", "user", "content", content));
}

int
wd_llm_requests (wd_llm_t *self)
{
    assert (self);
    return self->requests;
}

double
wd_llm_waited (wd_llm_t *self)
{
    assert (self);
    return self->waited;
}

static char *
s_request_body (wd_llm_t *self)
{
    json_t *body = json_object ();
    json_object_set_new (body, "model", json_string (self->model));
    json_object_set_new (body, "max_tokens", json_integer (self->cfg.max_tokens));
    json_object_set_new (body, "system", json_string (self->system ? self->system : ""));
    json_object_set (body, "messages", self->messages);
    if (self->cfg.structured)
        json_object_set_new (body, "output_config",
                             json_pack ("{s:{s:s, s:O}}", "format", "type", "json_schema", "schema",
                                        self->schema_json));
    else {
        json_object_set_new (body, "tools",
                             json_pack ("[{s:s, s:s, s:O}]", "name", self->tool_name, "description",
                                        self->tool_description, "input_schema", self->schema_json));
        json_object_set_new (body, "tool_choice", json_pack ("{s:s, s:s}", "type", "tool", "name",
                                                             self->tool_name));
    }
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    assert (text);
    return text;
}

//  Full jitter: uniform in [0, min(max, base * 2^attempt)].
static double
s_backoff (wd_llm_t *self, int attempt)
{
    double ceiling = self->cfg.backoff * pow (2, attempt);
    if (ceiling > self->cfg.backoff_max)
        ceiling = self->cfg.backoff_max;
    self->rng ^= self->rng << 13;
    self->rng ^= self->rng >> 7;
    self->rng ^= self->rng << 17;
    double u = (double) (self->rng >> 11) / (double) (1ull << 53);
    return ceiling * (0.5 + 0.5 * u);       //  at least half: never a hot loop
}

static void
s_wait (wd_llm_t *self, double seconds)
{
    self->waited += seconds;
    if (self->cfg.sleep_fn)
        self->cfg.sleep_fn (self->cfg.sleep_arg, seconds);
    else
        lb_clock_sleep_us ((int64_t) (seconds * 1e6), self->cfg.stop);
}

//  The API's error as "TYPE: MESSAGE", or a piece of the body when it is not
//  the documented shape. Caller frees.
static char *
s_api_error (const lb_http_response_t *resp)
{
    json_t *root = json_loadb (resp->body, resp->body_len, 0, NULL);
    const char *type = NULL, *message = NULL;
    json_t *error = root ? json_object_get (root, "error") : NULL;
    if (error) {
        type = json_string_value (json_object_get (error, "type"));
        message = json_string_value (json_object_get (error, "message"));
    }
    char *text = type && message ? lb_xasprintf ("%s: %.500s", type, message)
               : lb_xasprintf ("unexpected body: %.200s", resp->body_len ? resp->body : "(empty)");
    json_decref (root);
    return text;
}

//  Parses a 200 reply. Returns WD_LLM_OK with *output, WD_LLM_NO_OUTPUT,
//  WD_LLM_PERMANENT (refusal), or WD_LLM_TRANSIENT for a malformed body.
static wd_llm_rc_t
s_parse_reply (wd_llm_t *self, const lb_http_response_t *resp, char **output, char **why)
{
    json_error_t jerr;
    json_t *root = json_loadb (resp->body, resp->body_len, 0, &jerr);
    if (!root) {
        *why = lb_xasprintf ("malformed reply (not JSON: %s at line %d column %d)", jerr.text, jerr.line,
                             jerr.column);
        return WD_LLM_TRANSIENT;
    }
    wd_llm_rc_t rc = WD_LLM_TRANSIENT;
    json_t *content = json_object_get (root, "content");
    const char *type = json_string_value (json_object_get (root, "type"));
    const char *stop = json_string_value (json_object_get (root, "stop_reason"));
    if (!type || strcmp (type, "message") != 0 || !json_is_array (content)) {
        *why = lb_xstrdup ("malformed reply (not a message with a content array)");
        goto out;
    }
    if (stop && strcmp (stop, "refusal") == 0) {
        *why = lb_xstrdup ("the model refused (stop_reason refusal)");
        rc = WD_LLM_PERMANENT;
        goto out;
    }
    //  Record the assistant's turn as it came.
    json_array_append_new (self->messages, json_pack ("{s:s, s:O}", "role", "assistant", "content", content));
    free (self->last_tool_id);
    self->last_tool_id = NULL;
    size_t i;
    json_t *block;
    char *text = lb_xstrdup ("");
    json_t *input = NULL;
    json_array_foreach (content, i, block) {
        const char *btype = json_string_value (json_object_get (block, "type"));
        if (!btype)
            continue;
        if (strcmp (btype, "tool_use") == 0) {
            const char *name = json_string_value (json_object_get (block, "name"));
            const char *id = json_string_value (json_object_get (block, "id"));
            if (id && !self->last_tool_id)
                self->last_tool_id = lb_xstrdup (id);
            if (name && strcmp (name, self->tool_name) == 0 && !input)
                input = json_object_get (block, "input");
        }
        else
        if (strcmp (btype, "text") == 0 && json_is_string (json_object_get (block, "text"))) {
            char *more = lb_xasprintf ("%s%s", text, json_string_value (json_object_get (block, "text")));
            free (text);
            text = more;
        }
    }
    if (input && json_is_object (input)) {
        *output = json_dumps (input, JSON_COMPACT);
        rc = WD_LLM_OK;
    }
    else
    if (self->cfg.structured && *text) {
        *output = lb_xstrdup (text);
        rc = WD_LLM_OK;
    }
    else {
        *why = lb_xasprintf ("the reply holds no %s (stop_reason %s)",
                             self->cfg.structured ? "text" : "propose_task tool call with an object input",
                             stop ? stop : "missing");
        rc = WD_LLM_NO_OUTPUT;
    }
    if (rc == WD_LLM_OK && stop && strcmp (stop, "max_tokens") == 0)
        lb_log_warn ("llm reply stopped at max_tokens; it may be cut short");
    free (text);
out:
    json_decref (root);
    return rc;
}

wd_llm_rc_t
wd_llm_ask (wd_llm_t *self, char **output, char **error_p)
{
    assert (self && output);
    *output = NULL;
    char *url = lb_xasprintf ("%s/v1/messages", self->base_url);
    char *key_header = lb_xasprintf ("x-api-key: %s", self->api_key);
    char *version_header = lb_xasprintf ("anthropic-version: %s", self->version);
    const char *headers [] = { key_header, version_header, "content-type: application/json",
                               "accept: application/json", NULL };
    char *body = s_request_body (self);
    wd_llm_rc_t rc = WD_LLM_TRANSIENT;
    char *last = NULL;
    for (int attempt = 0; ; attempt++) {
        if (self->cfg.stop && *self->cfg.stop) {
            free (last);
            last = lb_xstrdup ("stopped while calling the API");
            rc = WD_LLM_TRANSIENT;
            break;
        }
        lb_http_request_t req = {
            .method = "POST", .url = url, .headers = headers, .body = body, .body_len = strlen (body),
            .connect_timeout = self->cfg.connect_timeout, .timeout = self->cfg.timeout,
            .max_body = 4u << 20
        };
        lb_http_response_t resp;
        self->requests++;
        int http = lb_http_perform (&req, &resp);
        const char *request_id = lb_http_response_header (&resp, "request-id");
        char rid [96] = "";
        if (request_id)
            snprintf (rid, sizeof rid, " (request-id %.64s)", request_id);
        double wait = -1;
        free (last);
        last = NULL;
        if (http) {
            last = lb_xasprintf ("API call failed: %s", resp.error);
            wait = s_backoff (self, attempt);
        }
        else
        if (resp.status == 200) {
            char *why = NULL;
            rc = s_parse_reply (self, &resp, output, &why);
            if (rc == WD_LLM_TRANSIENT) {
                last = lb_xasprintf ("API answered 200 with a %s%s", why, rid);
                wait = s_backoff (self, attempt);
            }
            else
            if (rc != WD_LLM_OK)
                last = lb_xasprintf ("%s%s", why, rid);
            free (why);
        }
        else {
            char *api = s_api_error (&resp);
            last = lb_xasprintf ("API answered %ld %s%s", resp.status, api, rid);
            free (api);
            if (resp.status == 429) {
                const char *after = lb_http_response_header (&resp, "retry-after");
                char *end = NULL;
                double seconds = after ? strtod (after, &end) : -1;
                if (after && end != after && isfinite (seconds) && seconds >= 0)
                    wait = seconds > self->cfg.backoff_max ? self->cfg.backoff_max : seconds;
                else
                    wait = s_backoff (self, attempt);
            }
            else
            if (resp.status == 529 || (resp.status >= 500 && resp.status <= 599))
                wait = s_backoff (self, attempt);
            else
                rc = WD_LLM_PERMANENT;      //  400, 401, 403, 404, 413 and anything unexpected
        }
        lb_http_response_release (&resp);
        if (rc == WD_LLM_OK || wait < 0)
            break;
        if (attempt >= self->cfg.retries) {
            char *more = lb_xasprintf ("%s; gave up after %d attempts", last, attempt + 1);
            free (last);
            last = more;
            rc = WD_LLM_TRANSIENT;
            break;
        }
        wd_llm_redact (self, last);
        lb_log_warn ("llm: %s; retry %d of %d in %.2f s", last, attempt + 1, self->cfg.retries, wait);
        s_wait (self, wait);
        rc = WD_LLM_TRANSIENT;
    }
    if (rc == WD_LLM_OK) {
        wd_llm_redact (self, *output);
        free (last);
    }
    else {
        wd_llm_redact (self, last);
        if (error_p)
            *error_p = last;
        else
            free (last);
    }
    memset (key_header, 0, strlen (key_header));
    free (key_header);
    free (version_header);
    free (body);
    free (url);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: a forked loopback server answers from a script of canned
//  responses and writes each request it saw to a pipe.

static void
s_write_all (int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write (fd, data, len);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t) n;
    }
}

static void
s_serve (int listener, const char *const *script, int report)
{
    for (int i = 0; script [i]; i++) {
        int conn = accept (listener, NULL, NULL);
        if (conn < 0)
            _exit (1);
        char *buf = lb_xcalloc (1, 1 << 20);
        size_t len = 0, want = 0;
        for (;;) {
            ssize_t n = read (conn, buf + len, (1 << 20) - 1 - len);
            if (n <= 0)
                break;
            len += (size_t) n;
            char *end = strstr (buf, "\r\n\r\n");
            if (end && !want) {
                const char *cl = strcasestr (buf, "content-length:");
                want = (size_t) (end + 4 - buf) + (cl ? (size_t) atol (cl + 15) : 0);
            }
            if (want && len >= want)
                break;
        }
        //  Report: length-prefixed request text.
        uint32_t n32 = (uint32_t) len;
        s_write_all (report, (char *) &n32, 4);
        s_write_all (report, buf, len);
        s_write_all (conn, script [i], strlen (script [i]));
        close (conn);
        free (buf);
    }
    _exit (0);
}

static char *
s_read_report (int fd)
{
    uint32_t n = 0;
    if (read (fd, &n, 4) != 4)
        return NULL;
    char *text = lb_xcalloc (1, n + 1);
    size_t got = 0;
    while (got < n) {
        ssize_t k = read (fd, text + got, n - got);
        if (k <= 0)
            break;
        got += (size_t) k;
    }
    return text;
}

static char *
s_http (int status, const char *reason, const char *extra_headers, const char *body)
{
    return lb_xasprintf ("HTTP/1.1 %d %s\r\ncontent-type: application/json\r\nrequest-id: req_%d\r\n%s"
                         "content-length: %zu\r\nconnection: close\r\n\r\n%s",
                         status, reason, status, extra_headers, strlen (body), body);
}

static void
s_fake_sleep (void *arg, double seconds)
{
    double *total = arg;
    *total += seconds;
}

typedef struct {
    pid_t pid;
    int report;
    int port;
} s_server_t;

static s_server_t
s_start (const char *const *script)
{
    int listener = socket (AF_INET, SOCK_STREAM, 0);
    assert (listener >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert (bind (listener, (struct sockaddr *) &addr, sizeof addr) == 0);
    assert (listen (listener, 8) == 0);
    socklen_t alen = sizeof addr;
    assert (getsockname (listener, (struct sockaddr *) &addr, &alen) == 0);
    int fds [2];
    assert (pipe (fds) == 0);
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
        close (fds [0]);
        s_serve (listener, script, fds [1]);
    }
    close (fds [1]);
    close (listener);
    return (s_server_t) { pid, fds [0], ntohs (addr.sin_port) };
}

static void
s_stop (s_server_t *server)
{
    kill (server->pid, SIGKILL);
    waitpid (server->pid, NULL, 0);
    close (server->report);
}

void
wd_llm_test (bool verbose)
{
    (void) verbose;
    const char *key = "sk-ant-test-0123456789abcdef";
    const char *tool_reply =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-test\","
        "\"content\":[{\"type\":\"text\",\"text\":\"Here it is.\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\","
        "\"name\":\"propose_task\",\"input\":{\"name\":\"x\",\"version\":1}}],\"stop_reason\":\"tool_use\","
        "\"usage\":{\"input_tokens\":10,\"output_tokens\":20}}";
    char *ok = s_http (200, "OK", "", tool_reply);
    char *r429 = s_http (429, "Too Many Requests", "retry-after: 7\r\n",
                         "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"},"
                         "\"request_id\":\"req_429\"}");
    char *r529 = s_http (529, "Overloaded", "",
                         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}");
    char *r500 = s_http (500, "Internal Server Error", "",
                         "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}");
    char *garbage = s_http (200, "OK", "", "{\"type\":\"message\",\"content\":[");
    char *r401 = lb_xasprintf ("HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
                               "content-length: %zu\r\n\r\n{\"type\":\"error\",\"error\":{\"type\":"
                               "\"authentication_error\",\"message\":\"invalid x-api-key %s\"}}",
                               strlen ("{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                                       "\"message\":\"invalid x-api-key \"}}") + strlen (key), key);
    char *schema = lb_xstrdup ("{\"type\":\"object\"}");

    //  1. 429 (retry-after), 529, 500, malformed 200, then success: five requests.
    const char *script1 [] = { r429, r529, r500, garbage, ok, NULL };
    s_server_t server = s_start (script1);
    char base [64];
    snprintf (base, sizeof base, "http://127.0.0.1:%d/", server.port);
    double slept = 0;
    wd_llm_config_t cfg = {
        .base_url = base, .api_key = key, .model = "claude-test", .version = "2023-06-01",
        .max_tokens = 1000, .schema = schema, .retries = 5, .backoff = 1, .backoff_max = 30,
        .connect_timeout = 5, .timeout = 10, .seed = 42, .sleep_fn = s_fake_sleep, .sleep_arg = &slept
    };
    wd_llm_t *llm = wd_llm_new (&cfg);
    wd_llm_start (llm, "system prompt", "propose a task");
    char *output = NULL, *error = NULL;
    assert (wd_llm_ask (llm, &output, &error) == WD_LLM_OK);
    assert (output && strcmp (output, "{\"name\":\"x\",\"version\":1}") == 0);
    assert (wd_llm_requests (llm) == 5);
    //  7 s for the 429, then backoffs for attempts 1, 2, 3: 1..2, 2..4, 4..8 s.
    assert (slept >= 7 + 1 + 2 + 4 && slept <= 7 + 2 + 4 + 8);
    assert (wd_llm_waited (llm) == slept);
    char *req = s_read_report (server.report);
    assert (req);
    assert (strstr (req, "POST /v1/messages HTTP/1.1"));
    assert (strcasestr (req, "\r\nx-api-key: sk-ant-test-0123456789abcdef\r\n"));
    assert (strcasestr (req, "\r\nanthropic-version: 2023-06-01\r\n"));
    assert (strcasestr (req, "\r\ncontent-type: application/json\r\n"));
    const char *json = strstr (req, "\r\n\r\n") + 4;
    json_t *body = json_loads (json, 0, NULL);
    assert (body);
    assert (strcmp (json_string_value (json_object_get (body, "model")), "claude-test") == 0);
    assert (json_integer_value (json_object_get (body, "max_tokens")) == 1000);
    assert (strcmp (json_string_value (json_object_get (body, "system")), "system prompt") == 0);
    json_t *choice = json_object_get (body, "tool_choice");
    assert (strcmp (json_string_value (json_object_get (choice, "type")), "tool") == 0);
    assert (strcmp (json_string_value (json_object_get (choice, "name")), "propose_task") == 0);
    json_t *tool = json_array_get (json_object_get (body, "tools"), 0);
    assert (json_is_object (json_object_get (tool, "input_schema")));
    assert (json_array_size (json_object_get (body, "messages")) == 1);
    json_decref (body);
    free (req);
    for (int i = 0; i < 4; i++)
        free (s_read_report (server.report));
    free (output);
    s_stop (&server);

    //  2. Feedback on a tool call becomes a tool_result with is_error.
    const char *script2 [] = { ok, NULL };
    server = s_start (script2);
    snprintf (base, sizeof base, "http://127.0.0.1:%d", server.port);
    wd_llm_destroy (&llm);
    cfg.base_url = base;
    llm = wd_llm_new (&cfg);
    wd_llm_start (llm, "system", "user");
    //  (a previous reply is needed: reuse the parse path by a fake assistant turn)
    json_array_append_new (llm->messages, json_pack ("{s:s, s:[{s:s, s:s, s:s, s:{}}]}", "role", "assistant",
                                                     "content", "type", "tool_use", "id", "toolu_9", "name",
                                                     "propose_task", "input"));
    llm->last_tool_id = lb_xstrdup ("toolu_9");
    wd_llm_feedback (llm, "sources[0].uri: scheme 'ftp' is not allowed");
    assert (wd_llm_ask (llm, &output, &error) == WD_LLM_OK);
    free (output);
    req = s_read_report (server.report);
    body = json_loads (strstr (req, "\r\n\r\n") + 4, 0, NULL);
    json_t *messages = json_object_get (body, "messages");
    assert (json_array_size (messages) == 3);
    json_t *result = json_array_get (json_object_get (json_array_get (messages, 2), "content"), 0);
    assert (strcmp (json_string_value (json_object_get (result, "type")), "tool_result") == 0);
    assert (strcmp (json_string_value (json_object_get (result, "tool_use_id")), "toolu_9") == 0);
    assert (json_is_true (json_object_get (result, "is_error")));
    assert (strstr (json_string_value (json_object_get (result, "content")), "ftp"));
    json_decref (body);
    free (req);
    s_stop (&server);

    //  3. 401: permanent at once, the API's message, the key redacted.
    const char *script3 [] = { r401, NULL };
    server = s_start (script3);
    snprintf (base, sizeof base, "http://127.0.0.1:%d", server.port);
    wd_llm_destroy (&llm);
    slept = 0;
    llm = wd_llm_new (&cfg);
    wd_llm_start (llm, "system", "user");
    assert (wd_llm_ask (llm, &output, &error) == WD_LLM_PERMANENT);
    assert (strstr (error, "401 authentication_error: invalid x-api-key"));
    assert (!strstr (error, key) && !strstr (error, "0123456789abcdef"));
    assert (wd_llm_requests (llm) == 1 && slept == 0);
    free (error);
    s_stop (&server);

    //  4. Retries exhausted on 529: transient, with the last status.
    const char *script4 [] = { r529, r529, r529, NULL };
    server = s_start (script4);
    snprintf (base, sizeof base, "http://127.0.0.1:%d", server.port);
    wd_llm_destroy (&llm);
    cfg.retries = 2;
    llm = wd_llm_new (&cfg);
    wd_llm_start (llm, "system", "user");
    assert (wd_llm_ask (llm, &output, &error) == WD_LLM_TRANSIENT);
    assert (strstr (error, "529 overloaded_error") && strstr (error, "gave up after 3 attempts"));
    assert (wd_llm_requests (llm) == 3);
    free (error);
    s_stop (&server);

    //  5. Structured output: the object is the text; a reply without one.
    const char *text_reply =
        "{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":"
        "[{\"type\":\"text\",\"text\":\"{\\\"name\\\":\\\"y\\\"}\"}],\"stop_reason\":\"end_turn\","
        "\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}";
    const char *refusal =
        "{\"id\":\"msg_3\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],"
        "\"stop_reason\":\"refusal\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}";
    char *ok_text = s_http (200, "OK", "", text_reply);
    char *ok_refusal = s_http (200, "OK", "", refusal);
    const char *script5 [] = { ok_text, ok_text, ok_refusal, NULL };
    server = s_start (script5);
    snprintf (base, sizeof base, "http://127.0.0.1:%d", server.port);
    wd_llm_destroy (&llm);
    cfg.structured = true;
    llm = wd_llm_new (&cfg);
    wd_llm_start (llm, "system", "user");
    assert (wd_llm_ask (llm, &output, &error) == WD_LLM_OK);
    assert (strcmp (output, "{\"name\":\"y\"}") == 0);
    free (output);
    req = s_read_report (server.report);
    body = json_loads (strstr (req, "\r\n\r\n") + 4, 0, NULL);
    json_t *format = json_object_get (json_object_get (body, "output_config"), "format");
    assert (strcmp (json_string_value (json_object_get (format, "type")), "json_schema") == 0);
    assert (json_object_get (format, "schema") && !json_object_get (body, "tools"));
    json_decref (body);
    free (req);
    wd_llm_feedback (llm, "try again");     //  no tool call: a plain user turn
    assert (wd_llm_ask (llm, &output, &error) == WD_LLM_OK);
    free (output);
    req = s_read_report (server.report);
    body = json_loads (strstr (req, "\r\n\r\n") + 4, 0, NULL);
    messages = json_object_get (body, "messages");
    assert (json_array_size (messages) == 3);
    assert (strcmp (json_string_value (json_object_get (json_array_get (json_object_get (
        json_array_get (messages, 2), "content"), 0), "type")), "text") == 0);
    json_decref (body);
    free (req);
    assert (wd_llm_ask (llm, &output, &error) == WD_LLM_PERMANENT);
    assert (strstr (error, "refused"));
    free (error);
    s_stop (&server);

    //  6. Nobody listening: transient after the retries.
    wd_llm_destroy (&llm);
    cfg.retries = 1;
    llm = wd_llm_new (&cfg);
    wd_llm_start (llm, "system", "user");
    assert (wd_llm_ask (llm, &output, &error) == WD_LLM_TRANSIENT);
    assert (strstr (error, "API call failed") && !strstr (error, key));
    free (error);

    //  Redaction.
    char text [128];
    snprintf (text, sizeof text, "a %s b %s", key, key);
    wd_llm_redact (llm, text);
    assert (strcmp (text, "a [redacted] b [redacted]") == 0);

    wd_llm_destroy (&llm);
    wd_llm_destroy (&llm);
    free (ok);
    free (ok_text);
    free (ok_refusal);
    free (r429);
    free (r529);
    free (r500);
    free (r401);
    free (garbage);
    free (schema);
}
