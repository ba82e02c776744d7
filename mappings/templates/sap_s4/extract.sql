-- SAP S/4HANA or ECC logistics invoice verification (MIRO/MIR7 documents): one row per invoice
-- item, carrying its document header, company code, invoicing party and address columns, ordered
-- by BELNR, GJAHR then BUZEI (the rows of one document are adjacent). Reads the tables of a
-- replicated database (SAP HANA, Oracle, PostgreSQL ... under their SAP names) or of table exports
-- loaded into any SQL database: RBKP, RSEG, EKPO, LFA1, ADRC, T001, TCURX.
-- One client: add  AND RBKP.MANDT = '100'  to the WHERE clause when the replica holds several.
-- MySQL/MariaDB: || is OR there, write CONCAT(); SQL Server: write + instead of ||.
--
-- Bind parameters (both optional; a missing one is NULL, i.e. no bound):
--   since, until   entry date and time of the document, CPUDT || CPUTM ('20240315093000')
--
-- Derived columns (the rest are the tables' own; see README.md):
--   INVOICE_KEY      BELNR-GJAHR: a document number is unique within its fiscal year only
--   INVOICE_STATUS   REVERSED, PARKED, IN VERIFICATION, BLOCKED FOR PAYMENT or POSTED
--   CURRENCY_FACTOR  SAP stores every amount with two decimals: 1000 JPY is stored 10.00, 1.234 KWD
--                    123.40. TCURX lists the currencies with other minor units; the mapping
--                    multiplies amounts by this factor to get the real amount back.
--   ITEM_SIGN        1 when the item goes the document's way (debit S on an invoice, credit H on a
--                    credit memo), -1 otherwise: RSEG amounts are unsigned, SHKZG holds the sign
--   TAX_AMOUNT       ABS(WMWST1): the tax as the document prints it
--   ITEM_TEXT        the item text, else the PO item's short text (EKPO-TXZ01)
--   UNIT_PRICE       WRBTR / MENGE (LIV stores no unit price), in stored units like WRBTR;
--                    * 1.0 keeps a database storing whole numbers as integers from dividing them
SELECT
    RBKP.BELNR || '-' || RBKP.GJAHR AS INVOICE_KEY,
    RBKP.BELNR,
    RBKP.GJAHR,
    RBKP.BUKRS,
    T001.BUTXT,
    RBKP.BLDAT,
    RBKP.BUDAT,
    RBKP.XBLNR,
    RBKP.XRECH,
    RBKP.WAERS,
    RBKP.RMWWR,
    ABS(RBKP.WMWST1) AS TAX_AMOUNT,
    RBKP.ZTERM,
    RBKP.BKTXT,
    CASE
        WHEN TRIM(COALESCE(RBKP.STBLG, '')) <> '' THEN 'REVERSED'
        WHEN RBKP.RBSTAT IN ('A', 'B', 'C', 'D', 'E') THEN 'PARKED'
        WHEN RBKP.RBSTAT IN ('1', '3', '4') THEN 'IN VERIFICATION'
        WHEN TRIM(COALESCE(RBKP.ZLSPR, '')) <> '' THEN 'BLOCKED FOR PAYMENT'
        ELSE 'POSTED'
    END AS INVOICE_STATUS,
    CASE COALESCE(TCURX.CURRDEC, 2)
        WHEN 0 THEN 100 WHEN 1 THEN 10 WHEN 3 THEN 0.1 WHEN 4 THEN 0.01 ELSE 1
    END AS CURRENCY_FACTOR,
    RBKP.CPUDT || RBKP.CPUTM AS ENTERED_AT,
    LFA1.LIFNR,
    LFA1.NAME1,
    LFA1.STCEG,
    TRIM(COALESCE(ADRC.STREET, '') || ' ' || COALESCE(ADRC.HOUSE_NUM1, '')) AS STREET_LINE,
    ADRC.CITY1,
    ADRC.POST_CODE1,
    ADRC.COUNTRY,
    RSEG.BUZEI,
    RSEG.EBELN,
    RSEG.EBELP,
    RSEG.MATNR,
    COALESCE(NULLIF(TRIM(RSEG.SGTXT), ''), EKPO.TXZ01) AS ITEM_TEXT,
    RSEG.MENGE,
    RSEG.BSTME,
    RSEG.WRBTR,
    RSEG.SHKZG,
    RSEG.MWSKZ,
    CASE
        WHEN RSEG.SHKZG = 'S' AND RBKP.XRECH = 'X' THEN 1
        WHEN RSEG.SHKZG = 'H' AND TRIM(COALESCE(RBKP.XRECH, '')) = '' THEN 1
        ELSE -1
    END AS ITEM_SIGN,
    COALESCE(ROUND(RSEG.WRBTR * 1.0 / NULLIF(RSEG.MENGE, 0), 2), RSEG.WRBTR) AS UNIT_PRICE
FROM RBKP
JOIN RSEG ON RSEG.MANDT = RBKP.MANDT AND RSEG.BELNR = RBKP.BELNR AND RSEG.GJAHR = RBKP.GJAHR
LEFT JOIN EKPO ON EKPO.MANDT = RSEG.MANDT AND EKPO.EBELN = RSEG.EBELN AND EKPO.EBELP = RSEG.EBELP
LEFT JOIN T001 ON T001.MANDT = RBKP.MANDT AND T001.BUKRS = RBKP.BUKRS
LEFT JOIN LFA1 ON LFA1.MANDT = RBKP.MANDT AND LFA1.LIFNR = RBKP.LIFNR
LEFT JOIN ADRC ON ADRC.CLIENT = LFA1.MANDT AND ADRC.ADDRNUMBER = LFA1.ADRNR
    AND TRIM(COALESCE(ADRC.NATION, '')) = ''
LEFT JOIN TCURX ON TCURX.CURRKEY = RBKP.WAERS
WHERE COALESCE(RBKP.RBSTAT, ' ') <> '2'
  AND (:since IS NULL OR RBKP.CPUDT || RBKP.CPUTM > :since)
  AND (:until IS NULL OR RBKP.CPUDT || RBKP.CPUTM <= :until)
ORDER BY RBKP.BELNR, RBKP.GJAHR, RSEG.BUZEI
