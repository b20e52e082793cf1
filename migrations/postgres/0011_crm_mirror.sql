-- The CRM mirror: each team's accounts, contacts and open deals, copied from its CRM (the
-- source of truth) by a backfill and then a delta sync on the provider's modified-since
-- field, so autocomplete and attendee matching answer without waiting for the CRM. Keyed by
-- (tenant, provider, the CRM's id). `search_text` is the name (and email) lowercased in Rust,
-- for a LIKE that works the same on both backends. `seen_at` is when a listing last saw the
-- record: a full sweep deletes what it did not see.
CREATE TABLE crm_mirror_accounts (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    provider    TEXT NOT NULL,
    remote_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    website     TEXT,
    domain      TEXT,
    search_text TEXT NOT NULL,
    seen_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, provider, remote_id)
);
CREATE INDEX crm_mirror_accounts_domain ON crm_mirror_accounts (tenant_id, provider, domain);
-- Autocomplete walks names in order, matching on the index alone, and stops at its 20th match.
CREATE INDEX crm_mirror_accounts_name ON crm_mirror_accounts (tenant_id, provider, name, remote_id, search_text);

CREATE TABLE crm_mirror_contacts (
    tenant_id    BIGINT NOT NULL REFERENCES tenants (id),
    provider     TEXT NOT NULL,
    remote_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    email        TEXT,
    account_id   TEXT,
    account_name TEXT,
    search_text  TEXT NOT NULL,
    seen_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, provider, remote_id)
);
CREATE INDEX crm_mirror_contacts_email ON crm_mirror_contacts (tenant_id, provider, email);
CREATE INDEX crm_mirror_contacts_name ON crm_mirror_contacts (tenant_id, provider, name, remote_id, search_text);

-- Open deals only: a deal listed closed (won, lost, archived) or gone is deleted.
CREATE TABLE crm_mirror_deals (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    provider    TEXT NOT NULL,
    remote_id   TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    stage       TEXT NOT NULL,
    amount      DOUBLE PRECISION,
    currency    TEXT,
    close_date  TEXT,
    seen_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, provider, remote_id)
);
CREATE INDEX crm_mirror_deals_account ON crm_mirror_deals (tenant_id, provider, account_id);

-- Where each (team, provider, object) sync stands. `since`: the delta's modified-since
-- (null until the first full listing ends). A listing in progress (the backfill, a sweep or a
-- delta longer than one run's pages) keeps its place in `after`, when it started in
-- `listing_started_at`, and the newest modification seen so far in `newest`.
CREATE TABLE crm_sync_cursors (
    tenant_id          BIGINT NOT NULL REFERENCES tenants (id),
    provider           TEXT NOT NULL,
    object             TEXT NOT NULL,
    since              TIMESTAMPTZ,
    mode               TEXT NOT NULL,
    after              TEXT,
    newest             TIMESTAMPTZ,
    listing_started_at TIMESTAMPTZ,
    last_sweep_at      TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, provider, object)
);

-- One row per sync run of one object: counts, and the failure as a machine code only (never
-- the provider's text).
CREATE TABLE crm_sync_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    provider    TEXT NOT NULL,
    object      TEXT NOT NULL,
    mode        TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    outcome     TEXT NOT NULL,
    pages       BIGINT NOT NULL,
    upserted    BIGINT NOT NULL,
    removed     BIGINT NOT NULL,
    error_code  TEXT
);
CREATE INDEX crm_sync_log_tenant ON crm_sync_log (tenant_id, provider, object, id);

-- An admin's pause switch: no sync of any object for the team while paused.
CREATE TABLE crm_sync_settings (
    tenant_id  BIGINT PRIMARY KEY REFERENCES tenants (id),
    paused     BOOLEAN NOT NULL,
    changed_by BIGINT REFERENCES users (id),
    changed_at TIMESTAMPTZ NOT NULL
);
