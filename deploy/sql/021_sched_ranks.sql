-- 021: training groups (docs/train.md "Across hosts"). A step with ranks = N > 1 runs as N jobs,
-- one per rank of a data-parallel NCCL group: job_id is rank 0's job; rank 0 hands out its NCCL
-- unique id in its progress and the daemon then submits ranks 1..N-1 with the id in their bodies.
-- The step is done when every rank is done; a failed rank fails the whole group, which the daemon
-- submits again (a new submission, a new id) until group_try reaches attempts.
alter table sched_steps add column if not exists ranks integer not null default 1 check (ranks between 1 and 64);
alter table sched_steps add column if not exists rank_jobs jsonb;           -- titanic ids of ranks 1..N-1 (null until submitted)
alter table sched_steps add column if not exists group_try integer not null default 0;  -- group submissions since the last sched retry
