-- The Slack workspace a job works for (its Web API calls use that workspace's bot token).
ALTER TABLE jobs ADD COLUMN slack_team TEXT;
