-- 020: the scheduler's lasting state (scheduler/, docs/scheduler.md).
-- A run is one execution of a pipeline; its steps are copied from the pipeline definition
-- when the run is enqueued, so editing a definition never changes a run in flight.
-- A step is keyed by (run_id, name): the daemon resumes from these rows after any crash and
-- never submits a step that is done.

create table if not exists sched_runs (
    id           text primary key,
    pipeline     text not null,
    state        text not null default 'queued'
                 check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    trigger      text not null default 'manual' check (trigger in ('manual', 'cron')),
    slot         timestamptz,                 -- the cron slot a cron run was started for
    overlap      text not null default 'skip' check (overlap in ('skip', 'queue', 'replace')),
    params       jsonb not null default '{}',
    error        text,
    created_at   timestamptz not null default now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
-- A cron slot starts at most one run, whatever number of daemons race for it.
create unique index if not exists sched_runs_slot on sched_runs (pipeline, slot) where slot is not null;
create index if not exists sched_runs_active on sched_runs (state) where state in ('queued', 'running');
create index if not exists sched_runs_created on sched_runs (created_at desc);

create table if not exists sched_steps (
    run_id        text not null references sched_runs (id) on delete cascade,
    name          text not null,
    ord           integer not null,               -- position in the definition (display order)
    service       text not null,
    needs         text[] not null default '{}',
    params        jsonb not null default '{}',    -- resolved at enqueue; upstream outputs are added at submit
    timeout_s     double precision not null default 0,
    attempts      integer not null default 3,     -- broker attempts per submission
    needs_gpu     boolean not null default false,
    state         text not null default 'waiting'
                  check (state in ('waiting', 'submitted', 'running', 'done', 'failed', 'cancelled')),
    submission    integer not null default 0,     -- scheduler submissions (sched retry adds one)
    broker_attempt integer not null default 0,    -- the broker's delivery count, from mmi.job
    job_id        text,                           -- titanic id of the current submission
    percent       double precision,
    stage         text,
    message       text,                           -- latest progress message or waiting reason
    outputs       jsonb not null default '{}',
    metrics       jsonb not null default '{}',
    error_code    text,
    error_message text,
    submitted_at  timestamptz,
    started_at    timestamptz,
    finished_at   timestamptz,
    primary key (run_id, name)
);
create index if not exists sched_steps_job on sched_steps (job_id) where job_id is not null;

-- Per pipeline: paused flag and the last cron slot considered (fired, skipped or missed).
create table if not exists sched_pipelines (
    name        text primary key,
    paused      boolean not null default false,
    last_slot   timestamptz,
    updated_at  timestamptz not null default now()
);

-- What happened to a run, newest last (`sched logs RUN`).
create table if not exists sched_log (
    id      bigserial primary key,
    run_id  text references sched_runs (id) on delete cascade,
    step    text,
    at      timestamptz not null default clock_timestamp(),
    level   text not null default 'info',
    message text not null
);
create index if not exists sched_log_run on sched_log (run_id, id);

-- Daemons alive (heartbeat every tick), so `sched enqueue --wait` can say when none runs.
create table if not exists sched_daemons (
    id         text primary key,             -- host:pid
    started_at timestamptz not null default now(),
    beat_at    timestamptz not null default now()
);
