-- 042: datasets the fetch step built. One row per (run, step): a replayed job finds
-- its row and changes nothing.
create table if not exists datasets (
    id             bigserial primary key,
    run            text not null,
    step           text not null,
    task_name      text not null,
    fingerprint    text not null default '',
    artifact_uri   text not null,          -- file://.../sha256/ab/<hex>
    sha256         text not null check (length(sha256) = 64),
    bytes          bigint not null check (bytes > 0),
    rows           bigint not null check (rows >= 0),
    cols           integer not null check (cols >= 0),
    columns        jsonb not null,         -- ["body_to_range_ratio", ...]
    label          text not null,
    task_type      text not null,
    sources        jsonb not null,         -- [{"uri": ..., "sha256": ..., "bytes": ...}]
    horizon_s      bigint not null,
    embargo_s      bigint not null check (embargo_s >= horizon_s),
    train_from     timestamptz, train_to timestamptz, train_rows bigint not null,
    valid_from     timestamptz, valid_to timestamptz, valid_rows bigint not null,
    test_from      timestamptz, test_to  timestamptz, test_rows  bigint not null,
    created_at     timestamptz not null default now(),
    unique (run, step),
    check (train_to is null or valid_from is null or train_to <= valid_from),
    check (valid_to is null or test_from is null or valid_to <= test_from)
);
create index if not exists datasets_task on datasets (task_name);
