-- Sample ERP extraction: one row per invoice line, carrying its header and supplier columns,
-- ordered by invoice_key then line_number (the rows of one invoice are adjacent).
-- Bind parameters (both optional; a missing one is NULL, i.e. no bound):
--   since   only invoices with updated_at >  since  (naive UTC timestamp)
--   until   only invoices with updated_at <= until  (naive UTC timestamp)
--
-- Types: PostgreSQL/MariaDB return Decimal for amounts and date/datetime for dates; SQLite returns
-- text for all of them ('1234.50', '2024-03-01', '2024-03-01 10:00:00.000000').
--
-- Header (erp_invoice)
--   invoice_key           integer  ERP primary key; rows are ordered by it
--   document_no           text     ERP document number, unique: the AppZen invoice_id
--   supplier_invoice_no   text     the supplier's own invoice number: the AppZen invoice_number
--   company_code          text     company code (DE01, FR01, GB01, US01, CH01): AppZen entity_id
--   company_name          text     company name (may be non-ASCII): AppZen entity_name
--   invoice_date_text     text     legacy invoice date, DD.MM.YYYY; dirty rows hold impossible dates
--   posting_date          date     posting date in the ERP
--   due_date              date     payment due date
--   currency              text     ISO 4217 code; dirty rows hold XXY
--   net_amount            decimal  sum of line_amount
--   vat_amount            decimal  sum of line_vat_amount
--   total_amount          decimal  net_amount + vat_amount
--   invoice_status        text     PARKED, APPROVED, POSTED or PAID; PAID as soon as a payment is
--                                  recorded in erp_payment (which leaves updated_at as it is)
--   payment_terms         text     NET14, NET30, NET60, 2/10N30
--   purchase_order_no     text     NULL for non-PO invoices
--   header_cost_center    text     cost centre of the invoice (CC1000 ...)
--   invoice_description   text     free text
--   document_uuid         text     uuid of an uploaded document, or NULL
--   erp_error_message     text     set when the ERP failed to take the invoice (status-sync ERROR)
--   erp_error_status      text     the ERP's error status code (F5 201 ...)
--   erp_error_exception   text     the ERP's exception text
--   updated_at            datetime last change (naive UTC); drives incremental runs
--   invoice_supplier_id   integer  the invoice's own supplier reference (NULL: none given); set
--                                  while supplier_id below is NULL: a supplier that is absent
-- Supplier (erp_supplier; all NULL when the invoice has no supplier: a dirty row)
--   supplier_id           integer  ERP supplier key: the AppZen supplier_id
--   supplier_number       text     supplier number (V100001 ...): AppZen supplier_number
--   supplier_name         text     may be non-ASCII (Müller GmbH, 株式会社山田商事)
--   supplier_vat_number   text     NULL for US suppliers
--   supplier_street, supplier_city, supplier_postal_code, supplier_country (ISO 3166 alpha-2),
--   supplier_email        text
-- Line (erp_invoice_line)
--   line_number           integer  1, 2, ... within the invoice
--   line_description      text     may be non-ASCII
--   item_code             text
--   quantity              decimal  whole or half units
--   unit_of_measure       text     EA, BOX, HUR, MON, KWH
--   unit_price            decimal
--   line_amount           decimal  quantity * unit_price, exact
--   vat_code              text     V19, TVA20, S20, EX0, M81 ...
--   vat_rate              decimal  percent (19.00, 5.50, 0.00)
--   line_vat_amount       decimal  line_amount * vat_rate / 100, rounded half up to the cent
--   gl_account            text     GL account: the ACCOUNT_SEGMENT
--   line_cost_center      text     cost centre: the COST_CENTER_SEGMENT
SELECT
    h.invoice_key,
    h.document_no,
    h.supplier_invoice_no,
    h.company_code,
    h.company_name,
    h.invoice_date_text,
    h.posting_date,
    h.due_date,
    h.currency,
    h.net_amount,
    h.vat_amount,
    h.total_amount,
    CASE WHEN p.invoice_key IS NOT NULL THEN 'PAID' ELSE h.status END AS invoice_status,
    h.payment_terms,
    h.purchase_order_no,
    h.cost_center AS header_cost_center,
    h.description AS invoice_description,
    h.document_uuid,
    h.erp_error_message,
    h.erp_error_status,
    h.erp_error_exception,
    h.updated_at,
    h.supplier_id AS invoice_supplier_id,
    s.supplier_id,
    s.supplier_number,
    s.name AS supplier_name,
    s.vat_number AS supplier_vat_number,
    s.street AS supplier_street,
    s.city AS supplier_city,
    s.postal_code AS supplier_postal_code,
    s.country_code AS supplier_country,
    s.email AS supplier_email,
    l.line_number,
    l.description AS line_description,
    l.item_code,
    l.quantity,
    l.unit_of_measure,
    l.unit_price,
    l.line_amount,
    l.vat_code,
    l.vat_rate,
    l.vat_amount AS line_vat_amount,
    l.gl_account,
    l.cost_center AS line_cost_center
FROM erp_invoice h
JOIN erp_invoice_line l ON l.invoice_key = h.invoice_key
LEFT JOIN erp_supplier s ON s.supplier_id = h.supplier_id
LEFT JOIN (
    SELECT invoice_key, MAX(recorded_at) AS recorded_at FROM erp_payment GROUP BY invoice_key
) p ON p.invoice_key = h.invoice_key
WHERE (:since IS NULL OR h.updated_at > :since)
  AND (:until IS NULL OR h.updated_at <= :until)
ORDER BY h.invoice_key, l.line_number
