-- Meetings as Fathom listed them, so a pick or a button can refer to a recording by id alone.
CREATE TABLE meetings (
    user_id      BIGINT NOT NULL REFERENCES users (id),
    recording_id BIGINT NOT NULL,
    data         TEXT NOT NULL,
    listed_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, recording_id)
);

-- When each person's Fathom was last polled for new recordings, and when to poll next.
CREATE TABLE fathom_polls (
    user_id     BIGINT PRIMARY KEY REFERENCES users (id),
    since       TIMESTAMPTZ NOT NULL,
    next_poll   TIMESTAMPTZ NOT NULL
);
