-- Staging store, initial schema (SQLite). Timestamps are naive UTC text written by the application.

CREATE TABLE schema_migrations (
    version INTEGER NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    applied_at DATETIME NOT NULL
);

CREATE TABLE runs (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    flow VARCHAR(100) NOT NULL,
    mapping VARCHAR(200) NOT NULL,
    parameters TEXT NOT NULL,
    historical BOOLEAN NOT NULL,
    started_at DATETIME NOT NULL,
    finished_at DATETIME,
    status VARCHAR(16) NOT NULL,
    counts TEXT,
    watermark VARCHAR(255)
);

CREATE INDEX ix_runs_mapping_status ON runs (mapping, status, id);

CREATE TABLE invoices (
    mapping VARCHAR(200) NOT NULL,
    invoice_id VARCHAR(255) NOT NULL,
    state VARCHAR(20) NOT NULL,
    payload_hash VARCHAR(128) NOT NULL,
    acked_hash VARCHAR(128),
    acked_payload TEXT,
    rejected_hash VARCHAR(128),
    uuid VARCHAR(100),
    uuid_lost_at DATETIME,
    appzen_status VARCHAR(16),
    attempts INTEGER NOT NULL,
    send_count INTEGER NOT NULL,
    resent_after_crash INTEGER NOT NULL,
    last_http_status INTEGER,
    error_code VARCHAR(64),
    error_message TEXT,
    correlation_id VARCHAR(128),
    historical BOOLEAN,
    first_sent_at DATETIME,
    last_sent_at DATETIME,
    erp_status VARCHAR(255),
    erp_error TEXT,
    pushed_status VARCHAR(255),
    pushed_error TEXT,
    pushed_at DATETIME,
    push_count INTEGER NOT NULL,
    last_run_id INTEGER,
    claimed_by VARCHAR(200),
    claim_expires_at DATETIME,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (mapping, invoice_id)
);

CREATE INDEX ix_invoices_state ON invoices (mapping, state);

CREATE TABLE failures (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    mapping VARCHAR(200) NOT NULL,
    source_key VARCHAR(255),
    source_location TEXT,
    stage VARCHAR(32) NOT NULL,
    rule VARCHAR(200) NOT NULL,
    message TEXT NOT NULL,
    field_path TEXT,
    source_column TEXT,
    value TEXT,
    hint TEXT,
    http_status INTEGER,
    error_code VARCHAR(64),
    correlation_id VARCHAR(128),
    attempts INTEGER NOT NULL,
    first_seen_at DATETIME NOT NULL,
    last_seen_at DATETIME NOT NULL,
    CONSTRAINT fk_failures_run FOREIGN KEY (run_id) REFERENCES runs (id)
);

CREATE INDEX ix_failures_run ON failures (run_id, id);

CREATE INDEX ix_failures_key ON failures (mapping, source_key, rule, first_seen_at);
