-- Google: what a follow-up made in Gmail and Calendar, with the links the person is shown.
ALTER TABLE followups ADD COLUMN gmail_draft_link TEXT;
ALTER TABLE followups ADD COLUMN calendar_event_link TEXT;
-- Which browser opened an OAuth link (a hash of its cookie): the callback must come from it.
ALTER TABLE oauth_states ADD COLUMN browser_hash TEXT;
