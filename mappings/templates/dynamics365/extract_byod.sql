-- Dynamics 365 Finance vendor invoices from a BYOD ("bring your own database") export of the
-- "Vendor invoice header" and "Vendor invoice line" entities: one row per invoice line carrying
-- its header columns, ordered by company, HEADERREFERENCE then line (the rows of one invoice are
-- adjacent). BYOD names each table after the entity's staging table unless the export was told
-- otherwise: rename VendorInvoiceHeaderStaging / VendorInvoiceLineStaging here if yours differ.
-- The columns are the entities' fields, as in the Data management CSV export (dynamics365.yaml).
--
-- Bind parameters (both optional; a missing one is NULL, i.e. no bound):
--   since, until   SYNCSTARTDATETIME of the header row: when BYOD last wrote it
SELECT
    h.DATAAREAID,
    h.HEADERREFERENCE,
    h.INVOICENUMBER,
    h.INVOICEDATE,
    h.DATE,
    h.DUEDATE,
    h.INVOICEACCOUNT,
    h.VENDORNAME,
    h.CURRENCY,
    h.ISAPPROVED,
    h.PURCHASEORDERNUMBER,
    h.TERMSOFPAYMENT,
    h.INVOICEDESCRIPTION,
    h.SYNCSTARTDATETIME,
    l.INVOICELINENUMBER,
    l.LINEDESCRIPTION,
    l.ITEMNUMBER,
    l.RECEIVENOW,
    l.UNIT,
    l.UNITPRICE,
    l.NETAMOUNT,
    l.MAINACCOUNTDISPLAYVALUE,
    l.PURCHASEORDER
FROM VendorInvoiceHeaderStaging h
JOIN VendorInvoiceLineStaging l
    ON l.DATAAREAID = h.DATAAREAID AND l.HEADERREFERENCE = h.HEADERREFERENCE
WHERE (:since IS NULL OR h.SYNCSTARTDATETIME > :since)
  AND (:until IS NULL OR h.SYNCSTARTDATETIME <= :until)
ORDER BY h.DATAAREAID, h.HEADERREFERENCE, l.INVOICELINENUMBER
