-- 001: the foundation. schema_migrations is created by deploy/migrate itself.
-- Migration numbers are grouped by owner so parallel work does not collide:
--   001-009 foundation, 010-019 broker, 020-029 scheduler, 030-039 discover,
--   040-049 fetch and data, 050-059 train, 060-069 evaluate and deploy, 070-079 monitor.

-- Settings the stack or operators keep in the database (small, typed as text).
create table if not exists stack_info (
    key        text primary key,
    value      text not null,
    updated_at timestamptz not null default now()
);
insert into stack_info (key, value) values ('created_by', 'deploy/migrate 001')
    on conflict (key) do nothing;
