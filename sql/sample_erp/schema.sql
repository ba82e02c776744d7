-- Sample ERP: reference DDL (PostgreSQL spelling) of the tables defined with SQLAlchemy Core in
-- pipeline/sample_erp/schema.py, which creates them on any dialect (pipeline.sample_erp.generate).
-- Keep the two in step: tests/extract/test_sample_erp.py compares them.
--
-- Dialect notes: MariaDB/MySQL tables use CHARACTER SET utf8mb4 (non-ASCII names);
-- on SQLite the NUMERIC columns are VARCHAR(40) holding exact decimal text ('1234.50'),
-- because SQLite's NUMERIC would store a float. Timestamps are naive UTC.

-- Suppliers (vendors).
CREATE TABLE erp_supplier (
    supplier_id INTEGER NOT NULL,
    supplier_number VARCHAR(20) NOT NULL,
    name VARCHAR(200) NOT NULL,
    vat_number VARCHAR(32),
    street VARCHAR(200) NOT NULL,
    city VARCHAR(100) NOT NULL,
    postal_code VARCHAR(20) NOT NULL,
    country_code VARCHAR(2) NOT NULL,              -- ISO 3166 alpha-2
    email VARCHAR(200),
    bank_account_last4 VARCHAR(4),
    PRIMARY KEY (supplier_id),
    UNIQUE (supplier_number)
);

-- Invoice headers.
CREATE TABLE erp_invoice (
    invoice_key INTEGER NOT NULL,
    document_no VARCHAR(20) NOT NULL,              -- ERP document number (AppZen invoice_id)
    supplier_invoice_no VARCHAR(40) NOT NULL,      -- the supplier's number (invoice_number)
    company_code VARCHAR(8) NOT NULL,              -- AppZen entity_id
    company_name VARCHAR(200) NOT NULL,
    supplier_id INTEGER,                           -- NULL: the invoice has no supplier (dirty)
    invoice_date_text VARCHAR(20),                 -- legacy text date, DD.MM.YYYY
    posting_date DATE NOT NULL,
    due_date DATE NOT NULL,
    currency VARCHAR(3) NOT NULL,                  -- ISO 4217
    net_amount NUMERIC(18, 2) NOT NULL,            -- sum of the lines' line_amount
    vat_amount NUMERIC(18, 2) NOT NULL,            -- sum of the lines' vat_amount
    total_amount NUMERIC(18, 2) NOT NULL,          -- net_amount + vat_amount
    status VARCHAR(12) NOT NULL,                   -- PARKED, APPROVED, POSTED, PAID
    payment_terms VARCHAR(10),
    purchase_order_no VARCHAR(20),
    cost_center VARCHAR(10),
    description VARCHAR(500),
    document_uuid VARCHAR(36),                     -- uploaded document, optional
    erp_error_message VARCHAR(500),                -- erp_error_*: the ERP failed to take it
    erp_error_status VARCHAR(40),
    erp_error_exception VARCHAR(500),
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, -- last change: incremental extraction
    PRIMARY KEY (invoice_key),
    UNIQUE (document_no),
    FOREIGN KEY (supplier_id) REFERENCES erp_supplier (supplier_id)
);
CREATE INDEX ix_erp_invoice_updated_at ON erp_invoice (updated_at);

-- Invoice lines.
CREATE TABLE erp_invoice_line (
    invoice_key INTEGER NOT NULL,
    line_number INTEGER NOT NULL,
    description VARCHAR(500) NOT NULL,
    item_code VARCHAR(20),
    quantity NUMERIC(12, 2) NOT NULL,
    unit_of_measure VARCHAR(10) NOT NULL,
    unit_price NUMERIC(18, 2) NOT NULL,
    line_amount NUMERIC(18, 2) NOT NULL,           -- quantity * unit_price, exact
    vat_code VARCHAR(8) NOT NULL,
    vat_rate NUMERIC(5, 2) NOT NULL,               -- percent
    vat_amount NUMERIC(18, 2) NOT NULL,            -- line_amount * vat_rate / 100, half up
    gl_account VARCHAR(10) NOT NULL,
    cost_center VARCHAR(10) NOT NULL,
    PRIMARY KEY (invoice_key, line_number),
    FOREIGN KEY (invoice_key) REFERENCES erp_invoice (invoice_key)
);

-- Payments: recording one makes the invoice PAID (extract.sql, status.sql) without moving the
-- invoice's updated_at, as many ERPs keep payment status in tables of their own.
CREATE TABLE erp_payment (
    payment_id INTEGER NOT NULL,
    invoice_key INTEGER NOT NULL,
    amount NUMERIC(18, 2) NOT NULL,
    paid_on DATE NOT NULL,
    recorded_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, -- when recorded: the status read's watermark
    PRIMARY KEY (payment_id),
    FOREIGN KEY (invoice_key) REFERENCES erp_invoice (invoice_key)
);
CREATE INDEX ix_erp_payment_invoice ON erp_payment (invoice_key, recorded_at);
