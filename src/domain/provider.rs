//! The outside services a person or a team connects, as stored in `credentials.provider`.

/// A service whose credentials the bot keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    Fathom,
    Google,
    Crono,
    Hubspot,
    Zoho,
    Odoo,
    /// A workspace's own bot token (installed through the sidecar).
    Slack,
}

impl Provider {
    /// The name stored in the database and shown in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Fathom => "fathom",
            Provider::Google => "google",
            Provider::Crono => "crono",
            Provider::Hubspot => "hubspot",
            Provider::Zoho => "zoho",
            Provider::Odoo => "odoo",
            Provider::Slack => "slack",
        }
    }
}

impl Provider {
    /// The CRMs a team can connect (one at a time).
    pub const CRMS: [Provider; 4] = [
        Provider::Crono,
        Provider::Hubspot,
        Provider::Zoho,
        Provider::Odoo,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        [
            Provider::Fathom,
            Provider::Google,
            Provider::Crono,
            Provider::Hubspot,
            Provider::Zoho,
            Provider::Odoo,
            Provider::Slack,
        ]
        .into_iter()
        .find(|p| p.as_str() == name)
    }

    /// The name people read ("HubSpot").
    pub fn label(self) -> &'static str {
        match self {
            Provider::Fathom => "Fathom",
            Provider::Google => "Google",
            Provider::Crono => "Crono",
            Provider::Hubspot => "HubSpot",
            Provider::Zoho => "Zoho CRM",
            Provider::Odoo => "Odoo",
            Provider::Slack => "Slack",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
