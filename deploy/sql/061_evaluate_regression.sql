-- 061: regression evaluations (docs/evaluate.md). A regression policy has
-- RMSE, MAE, R², MSE and a directional accuracy instead of the classifier's
-- metrics (those stay null); a regression comparison's diff / ci_lo / ci_hi
-- are the relative RMSE improvement (metric 'rmse') and mse_* the paired
-- bootstrap of the squared-error difference (baseline minus candidate).
alter table evaluations add column if not exists task_type text not null default 'binary'
    check (task_type in ('binary', 'regression'));
alter table evaluations add column if not exists rmse double precision;
alter table evaluations add column if not exists mae double precision;
alter table evaluations add column if not exists r2 double precision;
alter table evaluations add column if not exists mse double precision;
alter table evaluations add column if not exists direction_accuracy double precision;
alter table evaluations add column if not exists direction_rows bigint;
alter table evaluation_comparisons add column if not exists mse_diff double precision;
alter table evaluation_comparisons add column if not exists mse_lo double precision;
alter table evaluation_comparisons add column if not exists mse_hi double precision;
