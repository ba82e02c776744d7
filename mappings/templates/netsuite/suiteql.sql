-- NetSuite vendor bills and vendor credits as SuiteQL rows: one row per item or expense line
-- (main, tax and shipping lines left out), ordered by transaction then line. Run it with the
-- REST query service (POST /services/rest/query/v1/suiteql, 1,000 rows a page, follow "next")
-- or SuiteAnalytics Connect, and write every row as one JSON line, e.g.
--   jq -c '.items[]' page_*.json > netsuite/export/vendor_bills.jsonl
-- Limit each run to what changed, e.g.  AND t.lastmodifieddate > TO_DATE('2024-06-01', 'YYYY-MM-DD')
--
-- Derived columns:
--   trandate, duedate   TO_CHAR(..., 'YYYY-MM-DD'): not the user's date preference
--   document_sign       -1 for vendor credits, whose lines carry the credit sign, else 1
--   quantity, rate      expense lines have neither: 1, and the line amount
SELECT
    t.id AS transaction_id,
    t.tranid,
    t.type,
    TO_CHAR(t.trandate, 'YYYY-MM-DD') AS trandate,
    TO_CHAR(t.duedate, 'YYYY-MM-DD') AS duedate,
    t.entity AS vendor_id,
    v.entityid AS vendor_number,
    v.companyname AS vendor_name,
    BUILTIN.DF(t.status) AS status,
    BUILTIN.DF(t.terms) AS terms,
    c.symbol AS currency,
    t.memo,
    CASE WHEN t.type = 'VendCred' THEN -1 ELSE 1 END AS document_sign,
    tl.subsidiary AS subsidiary_id,
    BUILTIN.DF(tl.subsidiary) AS subsidiary,
    tl.linesequencenumber AS line_number,
    BUILTIN.DF(tl.item) AS item,
    tl.memo AS line_memo,
    COALESCE(tl.quantity, CASE WHEN tl.foreignamount < 0 THEN -1 ELSE 1 END) AS quantity,
    COALESCE(tl.rate, ABS(tl.foreignamount)) AS rate,
    BUILTIN.DF(tl.units) AS units,
    tl.foreignamount,
    BUILTIN.DF(tl.expenseaccount) AS account,
    BUILTIN.DF(tl.department) AS department
FROM transaction t
JOIN transactionline tl ON tl.transaction = t.id
LEFT JOIN vendor v ON v.id = t.entity
LEFT JOIN currency c ON c.id = t.currency
WHERE t.type IN ('VendBill', 'VendCred')
  AND tl.mainline = 'F'
  AND tl.taxline = 'F'
  AND COALESCE(tl.iscogs, 'F') = 'F'
ORDER BY t.id, tl.linesequencenumber
