-- PostgreSQL: the same schema as ../sqlite/ (ids are identity columns, integers BIGINT).
-- Pull sync per object type. status: idle | syncing | error | disabled. cursor_ms: the
-- lastmodifieddate high-water mark of the last finished run; position: where the current run
-- is (JSON, committed after every page) so a killed run resumes; run_until: the run's upper
-- bound. Times: Unix ms.
CREATE TABLE IF NOT EXISTS sync_state (
    object_type     TEXT    PRIMARY KEY,
    status          TEXT    NOT NULL,
    cursor_ms       BIGINT,
    position        TEXT,
    run_until       BIGINT,
    error_count     BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_success    BIGINT,
    started_at      BIGINT,
    synced_last_run BIGINT  NOT NULL DEFAULT 0,
    updated_at      BIGINT  NOT NULL
);
