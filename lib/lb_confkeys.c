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
    { "deploy.metric_regression", LB_CFG_STRING, "rmse", NULL, 0, 0, 0,
      "metric the gate compares on regression tasks (rmse: the relative RMSE improvement "
      "1 - RMSE(candidate)/RMSE(baseline), paired bootstrap)" },
    { "deploy.margin_regression", LB_CFG_REAL, "0.01", NULL, 0, 1, 0,
      "relative RMSE improvement over production required to promote a regression "
      "(0.01 = 1 % lower RMSE)" },
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

    //  [sources] - what a task's data sources may name (lib/lb_netpolicy.h); discover
    //  checks proposals with these rules and fetch checks again, redirects included
    { "sources.allow_http", LB_CFG_BOOL, "false", NULL, 0, 0, 0,
      "accept plain http:// sources besides https://" },
    { "sources.allow_private", LB_CFG_BOOL, "false", NULL, 0, 0, 0,
      "accept hosts that resolve to private, loopback, link-local or reserved addresses" },
    { "sources.file_roots", LB_CFG_STRING, "", NULL, 0, 0, 0,
      "comma-separated directories under which file:// sources may lie (empty: none)" },
    { "sources.pg_tables", LB_CFG_STRING, "market_bars,pattern_training_data", NULL, 0, 0, 0,
      "comma-separated PostgreSQL tables a pg: source may name" },
    { "sources.debian_packages", LB_CFG_STRING,
      "python3-vega-datasets,r-cran-timeseries,python3-statsmodels,python3-sklearn", NULL, 0, 0, 0,
      "comma-separated Debian packages a debian:PACKAGE:/PATH source may name" },
    { "sources.max_count", LB_CFG_INT, "4", NULL, 1, 8, 0,
      "most data sources one task may have" },
    { "sources.max_bytes", LB_CFG_BYTES, "1GiB", NULL, 1, 1073741824.0, 0,
      "largest total declared or probed size of a task's sources" },

    //  [discover] - the discover worker (docs/discover.md)
    { "discover.mode", LB_CFG_STRING, "auto", NULL, 0, 0, 0,
      "auto (the LLM when llm.api_key is set, else the catalog), llm or catalog" },
    { "discover.api_key_file", LB_CFG_STRING, NULL, NULL, 0, 0, 0,
      "file holding the API key (must be mode 0600 or stricter); used when llm.api_key is unset" },
    { "discover.similarity", LB_CFG_REAL, "0.8", NULL, 0.05, 1.0, 0,
      "hypotheses at least this similar (MinHash Jaccard over word 3-shingles) are near-duplicates" },
    { "discover.attempts", LB_CFG_INT, "3", NULL, 1, 20, 0,
      "LLM proposals asked for per step when one is a duplicate" },
    { "discover.retries", LB_CFG_INT, "4", NULL, 0, 20, 0,
      "retries of one API call on 429, 529 and 5xx" },
    { "discover.backoff", LB_CFG_SECONDS, "1s", NULL, 0, 600, 0,
      "first backoff on 529/5xx (doubles each retry, with jitter)" },
    { "discover.backoff_max", LB_CFG_SECONDS, "60s", NULL, 0, 3600, 0,
      "longest single wait between retries, retry-after included" },
    { "discover.connect_timeout", LB_CFG_SECONDS, "10s", NULL, 0.1, 600, 0,
      "connect timeout of an API call or probe" },
    { "discover.timeout", LB_CFG_SECONDS, "120s", NULL, 0.1, 3600, 0,
      "whole-call timeout of an API call" },
    { "discover.max_tokens", LB_CFG_INT, "4096", NULL, 256, 64000, 0,
      "max_tokens of an API call" },
    { "discover.output", LB_CFG_STRING, "tool", NULL, 0, 0, 0,
      "how JSON is forced: tool (a forced tool call) or json_schema (output_config structured output)" },
    { "discover.probe", LB_CFG_BOOL, "true", NULL, 0, 0, 0,
      "HEAD (or ranged GET) each http(s) source before accepting a task" },
    { "discover.history_bytes", LB_CFG_BYTES, "48KiB", NULL, 1024, 1048576, 0,
      "size of the past-task summary sent to the LLM (novelty is checked against all tasks anyway)" },
    { "discover.symbols", LB_CFG_STRING, "SPY,ABVM,ANOB,AZGQ,BKZF,BWRU", NULL, 0, 0, 0,
      "symbols of pg:market_bars the catalog proposes tasks for (the market generator's index and first five stocks)" },
    { "discover.seed", LB_CFG_INT, "20261122", NULL, 0, 0, 0,
      "seed of the catalog's order (same seed and history: same proposal)" },

    //  [fetch] - the fetch worker and the data layer (docs/data.md)
    { "fetch.catalyst", LB_CFG_BOOL, "true", NULL, 0, 0, 0,
      "split PostgreSQL sources by the Catalyst windows (else by time quantiles)" },
    { "fetch.train_window", LB_CFG_SECONDS, "2160h", NULL, 3600, 3.2e8, 0,
      "training window before validation (Catalyst: 2160 hours)" },
    { "fetch.valid_window", LB_CFG_SECONDS, "168h", NULL, 3600, 3.2e8, 0,
      "validation window before test (Catalyst: the last 168 hours)" },
    { "fetch.test_window", LB_CFG_SECONDS, "168h", NULL, 3600, 3.2e8, 0,
      "held-out test window at the end of the data" },
    { "fetch.embargo", LB_CFG_SECONDS, "0", NULL, 0, 3.2e8, 0,
      "least gap between splits; the longest label span is used when larger" },
    { "fetch.valid_fraction", LB_CFG_REAL, "0.15", NULL, 0.01, 0.5, 0,
      "share of distinct times for validation when splitting by quantiles" },
    { "fetch.test_fraction", LB_CFG_REAL, "0.15", NULL, 0.01, 0.5, 0,
      "share of distinct times for test when splitting by quantiles" },
    { "fetch.min_train_rows", LB_CFG_INT, "30", NULL, 1, 1e9, 0,
      "fewer training rows than this is an error (too few rows for the windows)" },
    { "fetch.debian_dir", LB_CFG_STRING, "var/debian", NULL, 0, 0, 0,
      "where debian:PACKAGE sources are unpacked (deploy/data/fetch-debian-data.sh)" },
    { "fetch.cache_dir", LB_CFG_STRING, "var/cache/fetch", NULL, 0, 0, 0,
      "downloaded files, kept with their ETag/Last-Modified for conditional re-download" },
    { "fetch.connect_timeout", LB_CFG_SECONDS, "10s", NULL, 0.1, 600, 0,
      "connect timeout of a download" },
    { "fetch.timeout", LB_CFG_SECONDS, "10m", NULL, 1, 86400, 0,
      "time limit of one download attempt" },
    { "fetch.retries", LB_CFG_INT, "3", NULL, 0, 20, 0,
      "download attempts after the first on 5xx, 429, timeouts and dropped connections" },
    { "fetch.max_redirects", LB_CFG_INT, "5", NULL, 0, 20, 0,
      "redirects followed, each re-checked against the [sources] rules" },
};

const lb_cfg_key_t *
lb_confkeys (size_t *count)
{
    *count = sizeof s_keys / sizeof s_keys [0];
    return s_keys;
}
