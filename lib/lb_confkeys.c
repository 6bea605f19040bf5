/*  lb_confkeys.c - every setting Predictors knows, in one table.

    This is the reference for the configuration file: `sched config` and
    each program's --print-config write it out with current values, and
    deploy/predictors.conf.example is that output. Add a row here when a
    module needs a new setting; keep sections together.

    Columns: name, type, default, conventional environment name, min, max,
    flags, help. Every setting can also be set as PREDICTORS_<SECTION>_<KEY>.
*/
#include "lb_config.h"

static const lb_cfg_key_t s_keys [] = {
    //  [log]
    { "log.level", LB_CFG_STRING, "info", NULL, 0, 0, 0,
      "most verbose level written: error, warn, info or debug" },

    //  [broker] - where the broker listens and how it keeps jobs
    { "broker.endpoint", LB_CFG_STRING, "tcp://127.0.0.1:5555", "PREDICTORS_BROKER", 0, 0, 0,
      "broker address that clients and workers connect to" },
    { "broker.bind", LB_CFG_STRING, "tcp://127.0.0.1:5555", NULL, 0, 0, 0,
      "endpoint the broker binds (MDP clients and workers)" },
    { "broker.events", LB_CFG_STRING, "tcp://127.0.0.1:5556", NULL, 0, 0, 0,
      "endpoint the broker publishes events on" },
    { "broker.journal", LB_CFG_STRING, "var/broker", NULL, 0, 0, 0,
      "directory of the broker's journal" },
    { "broker.heartbeat", LB_CFG_SECONDS, "2.5s", NULL, 0.01, 3600, 0,
      "heartbeat interval (MDP 0.1 cannot negotiate it; stock workers use 2.5 s)" },
    { "broker.liveness", LB_CFG_INT, "3", NULL, 1, 1000, 0,
      "heartbeats missed before a peer is taken for dead" },
    { "broker.lease", LB_CFG_SECONDS, "1h", NULL, 0.01, 2592000, 0,
      "default lease: how long a worker may hold a job without progress before it is re-queued" },
    { "broker.service_lease", LB_CFG_STRING, "train=8h,train.gpu=8h", NULL, 0, 0, 0,
      "per-service lease overrides, NAME=DURATION[,NAME=DURATION...]" },
    { "broker.attempts", LB_CFG_INT, "5", NULL, 1, 1000, 0,
      "attempts a job gets before it goes to the dead letters" },
    { "broker.service_attempts", LB_CFG_STRING, NULL, NULL, 0, 0, 0,
      "per-service attempt limits, NAME=N[,NAME=N...]" },
    { "broker.retry_base", LB_CFG_SECONDS, "1s", NULL, 0.001, 86400, 0,
      "backoff after the first failed attempt (doubles each time, with jitter)" },
    { "broker.retry_max", LB_CFG_SECONDS, "5m", NULL, 0.001, 604800, 0,
      "longest backoff between attempts" },
    { "broker.max_frames", LB_CFG_INT, "64", NULL, 4, 100000, 0,
      "most frames a message may have" },
    { "broker.max_message", LB_CFG_BYTES, "64MiB", NULL, 1024, 1073741824.0, 0,
      "most bytes a message may carry, all frames together" },
    { "broker.checkpoint", LB_CFG_BYTES, "64MiB", NULL, 4096, 1099511627776.0, 0,
      "checkpoint the journal (dropping finished history) when it grows past this or twice the live data" },
    { "broker.curve_secret", LB_CFG_STRING, NULL, NULL, 0, 0, 0,
      "broker certificate written by `broker --keygen` (its _secret twin must exist); set: CURVE on" },
    { "broker.curve_allow", LB_CFG_STRING, NULL, NULL, 0, 0, 0,
      "directory of public certificates of clients and workers allowed to connect" },
    { "broker.insecure", LB_CFG_BOOL, "false", NULL, 0, 0, 0,
      "allow binding a non-loopback address without CURVE" },

    //  [redis] - live state
    { "redis.url", LB_CFG_STRING, "redis://127.0.0.1:6379/0", "REDIS_URL", 0, 0, 0,
      "Redis server for live state (redis://[:password@]host:port/db)" },

    //  [postgres] - lasting state
    { "postgres.url", LB_CFG_STRING, "postgresql://predictors@127.0.0.1:5432/predictors",
      "DATABASE_URL", 0, 0, 0, "PostgreSQL connection string (libpq URI or key=value)" },

    //  [artifacts] - datasets, models, reports
    { "artifacts.root", LB_CFG_STRING, "var/artifacts", NULL, 0, 0, 0,
      "directory of the content-addressed artifact store (file:// URIs)" },

    //  [monitor] - bin/monitor: events to Redis, /metrics, the dashboard (docs/monitor.md)
    { "monitor.bind", LB_CFG_STRING, "127.0.0.1", NULL, 0, 0, 0,
      "IPv4 address the monitor's HTTP server listens on (0.0.0.0: every interface)" },
    { "monitor.port", LB_CFG_INT, "9464", NULL, 0, 65535, 0,
      "HTTP port of /metrics and the dashboard (0: any free port, logged)" },
    { "monitor.token", LB_CFG_STRING, NULL, NULL, 0, 0, LB_CFG_SECRET,
      "bearer token for dashboard actions (requeue, cancel); unset: read-only" },
    { "monitor.catchup", LB_CFG_SECONDS, "5s", NULL, 0.1, 3600, 0,
      "how often the monitor asks the broker (mmi.*) for the truth and repairs Redis" },
    { "monitor.mmi_timeout", LB_CFG_SECONDS, "2s", NULL, 0.05, 60, 0,
      "how long the monitor waits for an mmi.* answer" },
    { "monitor.job_ttl", LB_CFG_SECONDS, "7d", NULL, 60, 31536000, 0,
      "a job's Redis hash lives this long after its last change" },
    { "monitor.worker_ttl", LB_CFG_SECONDS, "60s", NULL, 5, 86400, 0,
      "a worker's Redis hash expires unless events or catch-up refresh it" },
    { "monitor.jobs_max", LB_CFG_INT, "10000", NULL, 10, 10000000, 0,
      "recent jobs kept in pred:jobs (oldest dropped)" },
    { "monitor.dead_max", LB_CFG_INT, "10000", NULL, 10, 10000000, 0,
      "dead letters kept in pred:dead (oldest dropped)" },
    { "monitor.events_max", LB_CFG_INT, "10000", NULL, 100, 10000000, 0,
      "events kept in the pred:events stream (approximate cap)" },
    { "monitor.stats_ttl", LB_CFG_SECONDS, "90d", NULL, 86400, 315360000, 0,
      "daily counters pred:stat:<day> live this long" },
    { "monitor.redis_prefix", LB_CFG_STRING, "pred:", NULL, 0, 0, 0,
      "prefix of every Redis key the monitor writes (monitoring/REDIS.md)" },
    { "monitor.curve_secret", LB_CFG_STRING, NULL, NULL, 0, 0, 0,
      "the monitor's CURVE certificate secret file (with broker.curve_secret set on the broker)" },
    { "monitor.curve_server", LB_CFG_STRING, NULL, NULL, 0, 0, 0,
      "the broker's public CURVE certificate file" },
    { "monitor.events_curve", LB_CFG_BOOL, "false", NULL, 0, 0, 0,
      "use CURVE on broker.events too (only when the broker's PUB socket is a CURVE server)" },

    //  [evaluate] - the evaluator (docs/evaluate.md)
    { "evaluate.candidate", LB_CFG_STRING, "ensemble", NULL, 0, 0, 0,
      "model the deploy gate considers (fixed in advance, never picked on the test rows)" },
    { "evaluate.threshold", LB_CFG_REAL, "0.5", NULL, 0, 1, 0,
      "probability at or above which a model predicts the positive class (and trades)" },
    { "evaluate.cost", LB_CFG_REAL, "0.0005", NULL, 0, 1, 0,
      "backtest cost per trade, in the units of the forward return (0.0005 = 5 bp)" },
    { "evaluate.periods_per_year", LB_CFG_REAL, "252", NULL, 1, 1e6, 0,
      "rows per year for the Sharpe ratio's annualisation (252 daily, 1638 hourly RTH)" },
    { "evaluate.bootstrap_rounds", LB_CFG_INT, "2000", NULL, 100, 1000000, 0,
      "paired bootstrap resamples for the confidence intervals" },
    { "evaluate.ci_level", LB_CFG_REAL, "0.95", NULL, 0.5, 0.999, 0,
      "level of the bootstrap confidence intervals" },
    { "evaluate.seed", LB_CFG_INT, "20261122", NULL, 0, 9.0e18, 0,
      "seed of the bootstrap generator (same seed, same interval)" },
    { "evaluate.blend_high", LB_CFG_REAL, "0.8", NULL, 0.5, 1, 0,
      "blended policy: model confidence max(p,1-p) above which the model alone decides" },
    { "evaluate.blend_low", LB_CFG_REAL, "0.6", NULL, 0.5, 1, 0,
      "blended policy: confidence above which the blend is used; at or below, the rules" },
    { "evaluate.blend_ml_weight", LB_CFG_REAL, "0.7", NULL, 0, 1, 0,
      "blended policy: weight of the model's probability in the blend (rules get the rest)" },
    { "evaluate.llm_analysis", LB_CFG_BOOL, "true", NULL, 0, 0, 0,
      "ask the LLM for an analysis in the report when an API key is set" },

    //  [deploy] - the registry, the gate and the serving pointer (docs/evaluate.md)
    { "deploy.metric", LB_CFG_STRING, "accuracy", NULL, 0, 0, 0,
      "metric the gate compares (accuracy: the one with a paired interval)" },
    { "deploy.margin", LB_CFG_REAL, "0.01", NULL, 0, 1, 0,
      "improvement over production required to promote (0.01 = one accuracy point)" },
    { "deploy.first_margin", LB_CFG_REAL, "0", NULL, 0, 1, 0,
      "improvement over the rules required to promote the first model of a task" },
    { "deploy.use_lower_bound", LB_CFG_BOOL, "true", NULL, 0, 0, 0,
      "gate on the lower bound of the bootstrap interval (false: on the point estimate)" },
    { "deploy.dir", LB_CFG_STRING, "var/deploy", NULL, 0, 0, 0,
      "directory the promoted model artifacts are copied to (verified by SHA-256)" },
    { "deploy.repair_interval", LB_CFG_SECONDS, "10s", NULL, 0.05, 3600, 0,
      "how often a serving deploy worker writes pointers left pending (Redis was down)" },

    //  [worker] - the runtime every worker links (workers/runtime/wk_runtime.h)
    { "worker.grace", LB_CFG_SECONDS, "30s", NULL, 0, 86400, 0,
      "on SIGTERM, how long the job in hand may take to finish before it is handed back" },
    { "worker.reconnect_min", LB_CFG_SECONDS, "250ms", NULL, 0.001, 3600, 0,
      "first wait before reconnecting to a silent broker (doubles each try, with jitter)" },
    { "worker.reconnect_max", LB_CFG_SECONDS, "30s", NULL, 0.001, 3600, 0,
      "longest wait between reconnection tries" },
    { "worker.progress_interval", LB_CFG_SECONDS, "250ms", NULL, 0, 60, 0,
      "progress reports are sent at most this often" },

    //  [train] - bin/worker-train (workers/train/, docs/train.md)
    { "train.threads", LB_CFG_INT, "0", NULL, 0, 1024, 0,
      "CPU threads per training job (XGBoost nthread, OpenMP, OpenBLAS); 0 = every online core" },
    { "train.progress_every", LB_CFG_SECONDS, "2s", NULL, 0, 3600, 0,
      "how often a job reports round/epoch, losses, metric, samples/s and ETA" },
    { "train.checkpoint_every", LB_CFG_SECONDS, "5m", NULL, 0, 86400, 0,
      "how often a job writes a checkpoint to the artifact store (0: never)" },
    { "train.gpu", LB_CFG_STRING, "auto", NULL, 0, 0, 0,
      "auto: train on a GPU when one is detected and usable; off: never; require: refuse to start without one" },
    { "train.gpu_failure", LB_CFG_STRING, "retry", NULL, 0, 0, 0,
      "what a CUDA error or GPU out-of-memory does to a job: retry (another attempt), cpu (finish on the CPU), fail" },

    //  [scheduler] - sched and its daemon (scheduler/, docs/scheduler.md)
    { "scheduler.pipelines", LB_CFG_STRING, "deploy/pipelines", NULL, 0, 0, 0,
      "directory of pipeline definitions (NAME.conf)" },
    { "scheduler.tick", LB_CFG_SECONDS, "500ms", NULL, 0.01, 60, 0,
      "how often the daemon looks at runs, results and cron slots" },
    { "scheduler.broker_timeout", LB_CFG_SECONDS, "5s", NULL, 0.1, 600, 0,
      "how long one request to the broker may take before it is retried on a new socket" },
    { "scheduler.worker_check", LB_CFG_SECONDS, "5s", NULL, 0.1, 3600, 0,
      "how often a waiting step's job is checked with mmi.job / mmi.service" },
    { "scheduler.redis_ttl", LB_CFG_SECONDS, "7d", NULL, 60, 31536000, 0,
      "how long a finished run's live keys stay in Redis" },

    //  [llm] - Anthropic Messages API
    { "llm.api_key", LB_CFG_STRING, NULL, "ANTHROPIC_API_KEY", 0, 0, LB_CFG_SECRET,
      "API key; without one, discovery uses the built-in catalog" },
    { "llm.base_url", LB_CFG_STRING, "https://api.anthropic.com", NULL, 0, 0, 0,
      "API base URL" },
    { "llm.model", LB_CFG_STRING, "claude-sonnet-4-5", NULL, 0, 0, 0,
      "model id" },
    { "llm.version", LB_CFG_STRING, "2023-06-01", NULL, 0, 0, 0,
      "anthropic-version header" },
};

const lb_cfg_key_t *
lb_confkeys (size_t *count)
{
    *count = sizeof s_keys / sizeof s_keys [0];
    return s_keys;
}
