-- Status-sync candidates without a table scan: a flag kept equal to
-- (erp_status, erp_error) IS DISTINCT FROM (pushed_status, pushed_error), and an index to page it.
-- MySQL commits DDL implicitly: the ALTER is one statement so it applies whole or not at all.

ALTER TABLE invoices
    ADD COLUMN push_pending BOOL NOT NULL DEFAULT FALSE,
    ADD INDEX ix_invoices_push (mapping, push_pending, invoice_id);

UPDATE invoices
SET push_pending = NOT (erp_status <=> pushed_status AND erp_error <=> pushed_error);
