-- CRM writes (notes, tasks, deal updates): each a person's request, stored with its job and
-- idempotency key before anything says it is coming, so a double click, a Slack retry or a
-- job retry makes one record.
CREATE TABLE crm_writes (
    id           TEXT PRIMARY KEY,
    tenant_id    BIGINT NOT NULL REFERENCES tenants (id),
    user_id      BIGINT NOT NULL REFERENCES users (id),
    followup_id  TEXT,
    provider     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    idem_key     TEXT NOT NULL UNIQUE,
    request      TEXT NOT NULL,
    status       TEXT NOT NULL,
    external_id  TEXT,
    link         TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    done_at      TIMESTAMPTZ
);
CREATE INDEX crm_writes_followup ON crm_writes (followup_id, kind);
