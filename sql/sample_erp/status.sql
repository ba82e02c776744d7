-- Sample ERP status read (status-sync's own, light): one row per invoice with its current status
-- and ERP error, read by the mapping's status.source. The status is computed exactly as in
-- extract.sql (PAID once a payment is recorded in erp_payment), so sync and the status read agree.
-- Bind parameter (optional; missing = NULL = every invoice):
--   since   only invoices whose header changed (updated_at) or that got a payment (recorded_at)
--           after it: the largest status_changed_at of the last successful status read
--
--   document_no           text     the AppZen invoice_id (the mapping's invoice_key)
--   invoice_status        text     PARKED, APPROVED, POSTED or PAID
--   erp_error_message     text     set when the ERP failed to take the invoice (status-sync ERROR)
--   erp_error_status      text     the ERP's error status code
--   erp_error_exception   text     the ERP's exception text
--   status_changed_at     datetime the later of the header's updated_at and the last payment's
--                                  recorded_at: the status read's watermark_column
SELECT
    h.document_no,
    CASE WHEN p.invoice_key IS NOT NULL THEN 'PAID' ELSE h.status END AS invoice_status,
    h.erp_error_message,
    h.erp_error_status,
    h.erp_error_exception,
    CASE
        WHEN p.recorded_at > h.updated_at THEN p.recorded_at
        ELSE h.updated_at
    END AS status_changed_at
FROM erp_invoice h
LEFT JOIN (
    SELECT invoice_key, MAX(recorded_at) AS recorded_at FROM erp_payment GROUP BY invoice_key
) p ON p.invoice_key = h.invoice_key
WHERE (:since IS NULL OR h.updated_at > :since OR p.recorded_at > :since)
ORDER BY h.document_no -- the key: staging compares each chunk in one range scan
