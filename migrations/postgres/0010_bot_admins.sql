-- Bot admins: people a workspace admin (or another bot admin) named to manage the team's
-- settings (the CRM, the sync pause switch, retention, bot admins) besides Slack's admins.
CREATE TABLE bot_admins (
    tenant_id     BIGINT NOT NULL REFERENCES tenants (id),
    slack_user_id TEXT NOT NULL,
    added_by      TEXT NOT NULL,
    added_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, slack_user_id)
);
-- A team's own retention period in days (NULL: the deployment's RETENTION_DAYS).
ALTER TABLE tenants ADD COLUMN retention_days INTEGER;
