-- Install links (`/slack/install`): random, stored hashed, single use, ten minutes. Apart from
-- oauth_states, whose rows belong to a known team and person.
CREATE TABLE slack_install_states (
    state_hash  TEXT PRIMARY KEY,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    created_at  TEXT NOT NULL
);
