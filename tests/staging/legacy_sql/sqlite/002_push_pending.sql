-- Status-sync candidates without a table scan: a flag kept equal to
-- (erp_status, erp_error) IS DISTINCT FROM (pushed_status, pushed_error), and an index to page it.

ALTER TABLE invoices ADD COLUMN push_pending BOOLEAN NOT NULL DEFAULT 0;

UPDATE invoices
SET push_pending = (erp_status IS NOT pushed_status OR erp_error IS NOT pushed_error);

CREATE INDEX ix_invoices_push ON invoices (mapping, push_pending, invoice_id);
