-- The enterprise a workspace belongs to, learnt from its envelopes, when the app is installed
-- org-wide (its bot token is then kept under the enterprise id).
ALTER TABLE tenants ADD COLUMN enterprise_id TEXT;
