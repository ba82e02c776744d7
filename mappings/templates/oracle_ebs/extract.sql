-- Oracle E-Business Suite R12 Payables: one row per invoice line (ITEM, FREIGHT, MISCELLANEOUS),
-- each carrying its invoice header, operating unit, supplier and supplier site columns, ordered by
-- INVOICE_ID then LINE_NUMBER (the rows of one invoice are adjacent). TAX lines are left out: the
-- header's TOTAL_TAX_AMOUNT carries the tax. Works on Oracle itself (run it as APPS, or prefix the
-- AP/PO/HR owners) and on replicas keeping the Oracle names (PostgreSQL folds them to lower case).
--
-- Bind parameters (both optional; a missing one is NULL, i.e. no bound):
--   since   invoices whose header or any line changed after it (LAST_UPDATE_DATE)
--   until   invoices whose header changed at or before it
--
-- Derived columns (the rest are the tables' own):
--   INVOICE_STATUS     CANCELLED, PAID, PARTIALLY PAID, APPROVED, REJECTED or PENDING APPROVAL,
--                      from CANCELLED_DATE, PAYMENT_STATUS_FLAG (Y/P/N), WFAPPROVAL_STATUS
--   DOCUMENT_SIGN      -1 for CREDIT and DEBIT memos (Payables stores them negative), else 1:
--                      the mapping multiplies amounts by it to send them as the document prints them
--   QUANTITY           QUANTITY_INVOICED, or +/-1 on amount-only lines (freight, non-PO services)
--   LINE_UNIT_PRICE    UNIT_PRICE, or the line amount on amount-only lines
--   CHANGED_AT         the later of the header's and the line's LAST_UPDATE_DATE (watermark)
SELECT
    ai.INVOICE_ID,
    ai.INVOICE_NUM,
    ai.INVOICE_TYPE_LOOKUP_CODE,
    ai.INVOICE_DATE,
    ai.GL_DATE,
    ai.INVOICE_CURRENCY_CODE,
    ai.INVOICE_AMOUNT,
    ai.TOTAL_TAX_AMOUNT,
    ai.DESCRIPTION AS INVOICE_DESCRIPTION,
    ai.TERMS_ID,
    ai.ORG_ID,
    hou.NAME AS OPERATING_UNIT,
    hph.SEGMENT1 AS PO_NUMBER,
    CASE
        WHEN ai.CANCELLED_DATE IS NOT NULL THEN 'CANCELLED'
        WHEN ai.PAYMENT_STATUS_FLAG = 'Y' THEN 'PAID'
        WHEN ai.PAYMENT_STATUS_FLAG = 'P' THEN 'PARTIALLY PAID'
        WHEN ai.WFAPPROVAL_STATUS IN ('WFAPPROVED', 'MANUALLY APPROVED', 'NOT REQUIRED')
            THEN 'APPROVED'
        WHEN ai.WFAPPROVAL_STATUS = 'REJECTED' THEN 'REJECTED'
        ELSE 'PENDING APPROVAL'
    END AS INVOICE_STATUS,
    CASE WHEN ai.INVOICE_TYPE_LOOKUP_CODE IN ('CREDIT', 'DEBIT') THEN -1 ELSE 1 END
        AS DOCUMENT_SIGN,
    sup.VENDOR_ID,
    sup.SEGMENT1 AS VENDOR_NUM,
    sup.VENDOR_NAME,
    sup.VAT_REGISTRATION_NUM,
    site.VENDOR_SITE_CODE,
    site.ADDRESS_LINE1,
    site.CITY,
    site.ZIP,
    site.COUNTRY,
    site.EMAIL_ADDRESS,
    ail.LINE_NUMBER,
    ail.LINE_TYPE_LOOKUP_CODE,
    COALESCE(ail.DESCRIPTION, ail.ITEM_DESCRIPTION, ail.LINE_TYPE_LOOKUP_CODE)
        AS LINE_DESCRIPTION,
    ail.AMOUNT AS LINE_AMOUNT,
    COALESCE(ail.QUANTITY_INVOICED, CASE WHEN ail.AMOUNT < 0 THEN -1 ELSE 1 END) AS QUANTITY,
    COALESCE(ail.UNIT_PRICE, ABS(ail.AMOUNT)) AS LINE_UNIT_PRICE,
    ail.UNIT_MEAS_LOOKUP_CODE,
    lph.SEGMENT1 AS LINE_PO_NUMBER,
    CASE WHEN ail.LAST_UPDATE_DATE > ai.LAST_UPDATE_DATE THEN ail.LAST_UPDATE_DATE
         ELSE ai.LAST_UPDATE_DATE END AS CHANGED_AT
FROM AP_INVOICES_ALL ai
JOIN AP_INVOICE_LINES_ALL ail ON ail.INVOICE_ID = ai.INVOICE_ID
LEFT JOIN AP_SUPPLIERS sup ON sup.VENDOR_ID = ai.VENDOR_ID
LEFT JOIN AP_SUPPLIER_SITES_ALL site ON site.VENDOR_SITE_ID = ai.VENDOR_SITE_ID
LEFT JOIN HR_OPERATING_UNITS hou ON hou.ORGANIZATION_ID = ai.ORG_ID
LEFT JOIN PO_HEADERS_ALL hph ON hph.PO_HEADER_ID = ai.PO_HEADER_ID
LEFT JOIN PO_HEADERS_ALL lph ON lph.PO_HEADER_ID = ail.PO_HEADER_ID
WHERE ai.INVOICE_TYPE_LOOKUP_CODE IN ('STANDARD', 'CREDIT', 'DEBIT')
  AND ail.LINE_TYPE_LOOKUP_CODE IN ('ITEM', 'FREIGHT', 'MISCELLANEOUS')
  AND COALESCE(ail.DISCARDED_FLAG, 'N') = 'N'
  AND (:since IS NULL OR ai.LAST_UPDATE_DATE > :since
       OR EXISTS (SELECT 1 FROM AP_INVOICE_LINES_ALL chg
                  WHERE chg.INVOICE_ID = ai.INVOICE_ID AND chg.LAST_UPDATE_DATE > :since))
  AND (:until IS NULL OR ai.LAST_UPDATE_DATE <= :until)
ORDER BY ai.INVOICE_ID, ail.LINE_NUMBER
