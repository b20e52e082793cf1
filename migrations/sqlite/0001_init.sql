-- Timestamps are RFC 3339 text bound from Rust (never CURRENT_TIMESTAMP), so they sort correctly.
CREATE TABLE tenants (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    slack_team_id TEXT NOT NULL UNIQUE,
    name          TEXT,
    crm_provider  TEXT,
    time_zone     TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE users (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id            INTEGER NOT NULL REFERENCES tenants (id),
    slack_user_id        TEXT NOT NULL,
    email                TEXT,
    real_name            TEXT,
    tz                   TEXT,
    tz_offset_secs       INTEGER,
    profile_refreshed_at TEXT,
    email_tone           TEXT NOT NULL DEFAULT 'professional',
    language_override    TEXT,
    signature            TEXT,
    default_task_type    TEXT NOT NULL DEFAULT 'email',
    default_task_time    TEXT NOT NULL DEFAULT '09:00',
    meeting_dms          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    UNIQUE (tenant_id, slack_user_id)
);

-- subject is 'tenant' for team-wide keys or 'user:<id>' for personal ones.
CREATE TABLE credentials (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     INTEGER NOT NULL REFERENCES tenants (id),
    user_id       INTEGER REFERENCES users (id),
    subject       TEXT NOT NULL,
    provider      TEXT NOT NULL,
    secret        BLOB NOT NULL,
    account_email TEXT,
    api_domain    TEXT,
    expires_at    TEXT,
    scopes        TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL DEFAULT 'connected',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (tenant_id, provider, subject)
);

CREATE TABLE oauth_states (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    state_hash    TEXT NOT NULL UNIQUE,
    provider      TEXT NOT NULL,
    tenant_id     INTEGER NOT NULL REFERENCES tenants (id),
    user_id       INTEGER NOT NULL REFERENCES users (id),
    pkce_verifier BLOB,
    extra         TEXT NOT NULL DEFAULT '{}',
    expires_at    TEXT NOT NULL,
    used_at       TEXT,
    created_at    TEXT NOT NULL
);

CREATE TABLE followups (
    id                 TEXT PRIMARY KEY,
    tenant_id          INTEGER NOT NULL REFERENCES tenants (id),
    user_id            INTEGER NOT NULL REFERENCES users (id),
    recording_id       BIGINT NOT NULL,
    meeting_title      TEXT NOT NULL,
    meeting_url        TEXT,
    meeting_started_at TEXT,
    attendees          TEXT NOT NULL DEFAULT '[]',
    language           TEXT,
    status             TEXT NOT NULL,
    generator          TEXT,
    draft              TEXT,
    edited             TEXT,
    dm_channel         TEXT,
    dm_ts              TEXT,
    gmail_draft_id     TEXT,
    calendar_event_id  TEXT,
    crm_note_id        TEXT,
    crm_task_id        TEXT,
    last_error         TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX followups_owner ON followups (tenant_id, user_id, created_at);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       TEXT NOT NULL,
    locked_until TEXT,
    locked_by    TEXT,
    last_error   TEXT,
    dedupe_key   TEXT UNIQUE,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, run_at);

CREATE TABLE seen_meetings (
    user_id      INTEGER NOT NULL REFERENCES users (id),
    recording_id BIGINT NOT NULL,
    seen_at      TEXT NOT NULL,
    PRIMARY KEY (user_id, recording_id)
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    user_id    INTEGER REFERENCES users (id),
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    detail     TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, created_at);

-- Slack envelopes (or events) already handled, so a redelivery is handled once.
CREATE TABLE processed_envelopes (
    dedupe_key  TEXT PRIMARY KEY,
    received_at TEXT NOT NULL
);
CREATE INDEX processed_envelopes_age ON processed_envelopes (received_at);

-- Named leases: one holder at a time (e.g. the meeting poller across replicas).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
