-- Staging store, initial schema (MySQL / MariaDB). InnoDB, utf8mb4 with binary collation (keys are
-- case-sensitive, as in the ERP); timestamps are DATETIME(6) in UTC; long text is LONGTEXT.

CREATE TABLE schema_migrations (
    version INTEGER NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    applied_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE runs (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    flow VARCHAR(100) NOT NULL,
    mapping VARCHAR(200) NOT NULL,
    parameters LONGTEXT NOT NULL,
    historical BOOL NOT NULL,
    started_at DATETIME(6) NOT NULL,
    finished_at DATETIME(6),
    status VARCHAR(16) NOT NULL,
    counts LONGTEXT,
    watermark VARCHAR(255)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX ix_runs_mapping_status ON runs (mapping, status, id);

CREATE TABLE invoices (
    mapping VARCHAR(200) NOT NULL,
    invoice_id VARCHAR(255) NOT NULL,
    state VARCHAR(20) NOT NULL,
    payload_hash VARCHAR(128) NOT NULL,
    acked_hash VARCHAR(128),
    acked_payload LONGTEXT,
    rejected_hash VARCHAR(128),
    uuid VARCHAR(100),
    uuid_lost_at DATETIME(6),
    appzen_status VARCHAR(16),
    attempts INTEGER NOT NULL,
    send_count INTEGER NOT NULL,
    resent_after_crash INTEGER NOT NULL,
    last_http_status INTEGER,
    error_code VARCHAR(64),
    error_message LONGTEXT,
    correlation_id VARCHAR(128),
    historical BOOL,
    first_sent_at DATETIME(6),
    last_sent_at DATETIME(6),
    erp_status VARCHAR(255),
    erp_error LONGTEXT,
    pushed_status VARCHAR(255),
    pushed_error LONGTEXT,
    pushed_at DATETIME(6),
    push_count INTEGER NOT NULL,
    last_run_id BIGINT,
    claimed_by VARCHAR(200),
    claim_expires_at DATETIME(6),
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (mapping, invoice_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX ix_invoices_state ON invoices (mapping, state);

CREATE TABLE failures (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    run_id BIGINT NOT NULL,
    mapping VARCHAR(200) NOT NULL,
    source_key VARCHAR(255),
    source_location LONGTEXT,
    stage VARCHAR(32) NOT NULL,
    rule VARCHAR(200) NOT NULL,
    message LONGTEXT NOT NULL,
    field_path LONGTEXT,
    source_column LONGTEXT,
    value LONGTEXT,
    hint LONGTEXT,
    http_status INTEGER,
    error_code VARCHAR(64),
    correlation_id VARCHAR(128),
    attempts INTEGER NOT NULL,
    first_seen_at DATETIME(6) NOT NULL,
    last_seen_at DATETIME(6) NOT NULL,
    INDEX ix_failures_run (run_id, id),
    CONSTRAINT fk_failures_run FOREIGN KEY (run_id) REFERENCES runs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX ix_failures_key ON failures (mapping, source_key, rule, first_seen_at);
