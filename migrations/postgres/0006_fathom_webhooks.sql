-- One Fathom webhook per person: its public path id (random, never a user id) and Fathom's
-- webhook id and signing secret, sealed together.
CREATE TABLE fathom_webhooks (
    path_id     TEXT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    user_id     BIGINT NOT NULL UNIQUE REFERENCES users (id),
    sealed      BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
