-- Install links (`/slack/install`): random, stored hashed, single use, ten minutes. Apart from
-- oauth_states, whose rows belong to a known team and person.
CREATE TABLE slack_install_states (
    state_hash  TEXT PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL
);
