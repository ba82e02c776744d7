-- AppZen audit outcomes (polled or imported) and what was written back to the ERP-side systems
-- (merchant platform notes, CRM.COM rejections); a uuid index so search hits find their invoice.

CREATE TABLE audit_outcomes (
    mapping VARCHAR(200) NOT NULL,
    invoice_id VARCHAR(255) NOT NULL,
    uuid VARCHAR(100),
    outcome VARCHAR(16) NOT NULL,
    appzen_status VARCHAR(32),
    risk_level VARCHAR(32),
    reason VARCHAR(255),
    message TEXT,
    rules TEXT,
    source VARCHAR(16) NOT NULL,
    appzen_updated_at DATETIME,
    recorded_at DATETIME NOT NULL,
    PRIMARY KEY (mapping, invoice_id)
);

CREATE INDEX ix_audit_outcomes_outcome ON audit_outcomes (mapping, outcome, invoice_id);

CREATE TABLE writebacks (
    mapping VARCHAR(200) NOT NULL,
    invoice_id VARCHAR(255) NOT NULL,
    target VARCHAR(16) NOT NULL,
    uuid VARCHAR(100),
    state VARCHAR(32) NOT NULL,
    result VARCHAR(16) NOT NULL,
    detail VARCHAR(255),
    message TEXT,
    attempts INTEGER NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (mapping, invoice_id, target)
);

CREATE INDEX ix_invoices_uuid ON invoices (uuid);
