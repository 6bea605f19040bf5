-- 030: what the discover step proposes (docs/discover.md).
-- tasks: every task ever tried, the set novelty is checked against. A task is data
-- (proto/pr_task.h); fingerprint = SHA-256 of its sources + target + horizon, unique;
-- minhash = 128 x 32-bit MinHash of the hypothesis's word 3-shingles, as 1024 hex digits.
-- run_id/step: the pipeline run that proposed it (text, as sched_runs.id; no foreign key so
-- that `worker-discover --once` works without the scheduler). One task per (run, step):
-- a replayed step finds its task and changes nothing.
create table if not exists tasks (
    id          bigserial primary key,
    name        text not null,
    fingerprint text not null unique check (fingerprint ~ '^[0-9a-f]{64}$'),
    spec        jsonb not null,
    minhash     text not null check (length (minhash) = 1024 and minhash ~ '^[0-9a-f]+$'),
    origin      text not null check (origin in ('llm', 'catalog')),
    run_id      text,
    step        text,
    created_at  timestamptz not null default now()
);
create unique index if not exists tasks_run_step on tasks (run_id, step) where run_id is not null;
create index if not exists tasks_created on tasks (created_at);

-- discover_attempts: every proposal the step looked at and what became of it, so that a
-- failed step keeps the model's output and the validation errors (never the API key).
create table if not exists discover_attempts (
    id          bigserial primary key,
    run_id      text,
    step        text,
    origin      text not null check (origin in ('llm', 'catalog')),
    outcome     text not null check (outcome in ('accepted', 'invalid', 'duplicate', 'near_duplicate',
                                                 'infeasible', 'api_error')),
    reason      text,
    output      text,
    created_at  timestamptz not null default now()
);
create index if not exists discover_attempts_run on discover_attempts (run_id);
