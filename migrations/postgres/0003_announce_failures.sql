-- How often Slack refused a recording's announcement; after a few tries it is skipped, so
-- one refused announcement never holds back the recordings after it.
CREATE TABLE announce_failures (
    user_id      BIGINT NOT NULL REFERENCES users (id),
    recording_id BIGINT NOT NULL,
    failures     BIGINT NOT NULL,
    PRIMARY KEY (user_id, recording_id)
);
