-- AppZen audit outcomes (polled or imported) and what was written back to the ERP-side systems
-- (merchant platform notes, CRM.COM rejections); a uuid index so search hits find their invoice.
-- MySQL commits DDL implicitly: each statement stands alone, so a rerun after a failure can
-- finish the file by hand (see pipeline/staging/migrations.py).

CREATE TABLE audit_outcomes (
    mapping VARCHAR(200) NOT NULL,
    invoice_id VARCHAR(255) NOT NULL,
    uuid VARCHAR(100),
    outcome VARCHAR(16) NOT NULL,
    appzen_status VARCHAR(32),
    risk_level VARCHAR(32),
    reason VARCHAR(255),
    message LONGTEXT,
    rules LONGTEXT,
    source VARCHAR(16) NOT NULL,
    appzen_updated_at DATETIME(6),
    recorded_at DATETIME(6) NOT NULL,
    PRIMARY KEY (mapping, invoice_id),
    INDEX ix_audit_outcomes_outcome (mapping, outcome, invoice_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE writebacks (
    mapping VARCHAR(200) NOT NULL,
    invoice_id VARCHAR(255) NOT NULL,
    target VARCHAR(16) NOT NULL,
    uuid VARCHAR(100),
    state VARCHAR(32) NOT NULL,
    result VARCHAR(16) NOT NULL,
    detail VARCHAR(255),
    message LONGTEXT,
    attempts INTEGER NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (mapping, invoice_id, target)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX ix_invoices_uuid ON invoices (uuid);
