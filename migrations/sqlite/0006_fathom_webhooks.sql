-- One Fathom webhook per person: its public path id (random, never a user id) and Fathom's
-- webhook id and signing secret, sealed together.
CREATE TABLE fathom_webhooks (
    path_id     TEXT PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    user_id     INTEGER NOT NULL UNIQUE REFERENCES users (id),
    sealed      BLOB NOT NULL,
    created_at  TEXT NOT NULL
);
