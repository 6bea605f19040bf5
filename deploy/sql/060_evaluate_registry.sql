-- 060: evaluations and the model registry (docs/evaluate.md).
-- Owner: the evaluator (evaluations, evaluation_comparisons) and the deployer
-- (registered_models, model_versions, model_aliases, deploy_decisions,
-- serving_pointers). Run ids are text so that they join whatever the
-- scheduler uses for its ids.

-- One row per policy (model, production re-scored, rules, blend) per run,
-- all on the same test rows (rows_sha256 fingerprints them).
create table if not exists evaluations (
    run             text not null,
    task            text not null,
    policy          text not null,
    family          text not null,
    role            text not null check (role in ('candidate', 'model', 'production', 'rules', 'blend')),
    model_version   integer,                -- registry version, for role production
    artifact_uri    text,
    sha256          text,
    rows_sha256     text not null,
    n_rows          integer not null,
    threshold       double precision not null,
    accuracy        double precision,
    precision_      double precision,
    recall          double precision,
    f1              double precision,
    roc_auc         double precision,
    log_loss        double precision,
    fpr             double precision,
    brier           double precision,
    ece             double precision,
    tp bigint, fp bigint, tn bigint, fn bigint,
    bt_trades       bigint,
    bt_total        double precision,
    bt_sharpe       double precision,
    bt_hit_rate     double precision,
    bt_max_drawdown double precision,
    report_uri      text,
    created_at      timestamptz not null default now(),
    primary key (run, policy)
);
create index if not exists evaluations_task on evaluations (task, created_at);

-- A/B: candidate minus baseline on accuracy, same rows, paired bootstrap + McNemar.
create table if not exists evaluation_comparisons (
    run              text not null,
    task             text not null,
    candidate        text not null,
    baseline         text not null,
    baseline_version integer,
    metric           text not null default 'accuracy',
    rows_sha256      text not null,
    n_rows           integer not null,
    diff             double precision,
    ci_lo            double precision,
    ci_hi            double precision,
    ci_level         double precision not null,
    rounds           integer not null,
    seed             bigint not null,
    mcnemar_b        bigint not null,
    mcnemar_c        bigint not null,
    mcnemar_p        double precision,
    created_at       timestamptz not null default now(),
    primary key (run, candidate, baseline)
);

-- The registry, after MLflow's: registered models per task, numbered
-- versions, aliases (production, previous) moved in one transaction.
create table if not exists registered_models (
    task        text primary key,
    created_at  timestamptz not null default now()
);

create table if not exists model_versions (
    task          text not null references registered_models (task),
    version       integer not null check (version > 0),
    artifact_uri  text not null,
    sha256        text not null check (sha256 ~ '^[0-9a-f]{64}$'),
    run           text not null,
    family        text not null,
    metrics       jsonb not null default '{}',
    status        text not null check (status in ('promoted', 'rejected', 'rolled_back')),
    deployed_path text,                      -- the verified copy in deploy.dir (promoted ones)
    created_at    timestamptz not null default now(),
    primary key (task, version),
    unique (task, run)
);

create table if not exists model_aliases (
    task        text not null references registered_models (task),
    alias       text not null check (alias in ('production', 'previous')),
    version     integer not null,
    updated_at  timestamptz not null default now(),
    primary key (task, alias),
    foreign key (task, version) references model_versions (task, version)
);

-- Every deploy step and rollback, promoted or not.
create table if not exists deploy_decisions (
    id                bigserial primary key,
    task              text not null,
    run               text,                 -- null for a rollback
    action            text not null check (action in ('deploy', 'rollback')),
    candidate_version integer,
    incumbent_version integer,
    candidate_uri     text,
    metric            text not null default 'accuracy',
    old_value         double precision,     -- incumbent's (or the rules') accuracy
    new_value         double precision,     -- candidate's accuracy
    diff              double precision,
    ci_lo             double precision,
    ci_hi             double precision,
    margin            double precision,
    decision          text not null check (decision in ('promoted', 'rejected', 'refused', 'rolled_back')),
    reason            text not null,
    created_at        timestamptz not null default now()
);
create unique index if not exists deploy_decisions_once on deploy_decisions (task, run) where action = 'deploy';

-- What Redis must show at pred:model:<task>:production. pending = the
-- pointer has not reached Redis yet (Redis was down); repaired later.
create table if not exists serving_pointers (
    task          text primary key references registered_models (task),
    version       integer not null,
    deployed_path text not null,
    sha256        text not null,
    family        text not null,
    generation    bigint not null,           -- grows on every change; Redis keeps the highest
    pending       boolean not null default true,
    updated_at    timestamptz not null default now()
);
