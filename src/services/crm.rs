//! The team's CRM as every feature reaches it: the connection (keys unsealed per call, behind
//! the shared limiter), matching a meeting's attendees to an account, and a short cache for
//! autocomplete answers.

use std::sync::Arc;

use tracing::warn;

use super::Services;
use crate::clients::crm::crono::CronoKeys;
use crate::clients::crm::odoo::OdooKeys;
use crate::clients::crm::{Calls, Crm, CrmError, Guard};
use crate::domain::crm::{Account, AccountMatch, Contact, company_domain};
use crate::domain::followup::Followup;
use crate::domain::ids::TenantId;
use crate::domain::provider::Provider;
use crate::store::credentials::{CredentialError, Subject};

/// Why the team's CRM cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoCrm {
    NotConnected,
    /// Stored, but sealed with an encryption key the bot no longer has.
    Unreadable,
}

impl NoCrm {
    pub fn words(self) -> &'static str {
        match self {
            NoCrm::NotConnected => {
                "No CRM is connected for this workspace yet. A Slack workspace admin or owner \
                 can connect Crono, HubSpot, Zoho CRM or Odoo with `/crono-connect`."
            }
            NoCrm::Unreadable => {
                "The workspace's CRM keys can no longer be read (the bot's encryption key was \
                 changed). A workspace admin can connect the CRM again with `/crono-connect`."
            }
        }
    }
}

/// What matching a meeting's attendees found.
#[derive(Clone, Debug)]
pub struct Matched {
    pub account: AccountMatch,
    /// The CRM's contacts with an attendee's exact email.
    pub contacts: Vec<Contact>,
}

/// At most this many attendee emails are looked up for one match.
const MAX_EMAILS: usize = 8;

impl Services {
    /// The team's CRM, ready for calls of the given kind.
    pub async fn crm(
        &self,
        tenant: TenantId,
        calls: Calls,
    ) -> anyhow::Result<Result<Arc<dyn Crm>, NoCrm>> {
        let Some(provider) = self.store.team_crm(tenant).await? else {
            return Ok(Err(NoCrm::NotConnected));
        };
        let found = self
            .store
            .credential(&self.cipher, tenant, Subject::Tenant, provider)
            .await;
        let credential = match found {
            Ok(Some(credential)) => credential,
            Ok(None) => return Ok(Err(NoCrm::NotConnected)),
            Err(CredentialError::KeyGone) => return Ok(Err(NoCrm::Unreadable)),
            Err(e) => return Err(e.into()),
        };
        let guard = Guard {
            limits: self.crm_limits.clone(),
            tenant,
            provider,
            calls,
        };
        let crm = match provider {
            Provider::Crono => CronoKeys::from_secret(&credential.secret)
                .map(|keys| self.crono.session(keys, guard)),
            Provider::Odoo => {
                OdooKeys::from_secret(&credential.secret).map(|keys| self.odoo.session(keys, guard))
            }
            _ => None,
        };
        match crm {
            Some(crm) => Ok(Ok(crm)),
            None => {
                warn!(%provider, "the stored CRM credential is not in the expected shape");
                Ok(Err(NoCrm::Unreadable))
            }
        }
    }

    /// Which account a follow-up's meeting was with: an attendee's exact contact email
    /// first, then an exact website domain (free-mail domains and the seller's own domain
    /// ignored). Never a fuzzy name hit: when no single account is certain, the caller lets
    /// the person pick.
    pub async fn match_account(
        &self,
        crm: &dyn Crm,
        followup: &Followup,
        own_email: Option<&str>,
    ) -> Result<Matched, CrmError> {
        let emails = attendee_emails(followup);
        let mut contacts = Vec::new();
        for email in &emails {
            contacts.extend(crm.contacts_by_email(email).await?);
        }
        let mut accounts: Vec<Account> = Vec::new();
        for contact in &contacts {
            let Some(id) = &contact.account_id else {
                continue;
            };
            if accounts.iter().any(|a| &a.id == id) {
                continue;
            }
            let account = match &contact.account_name {
                Some(name) => Account {
                    id: id.clone(),
                    name: name.clone(),
                    website: None,
                },
                None => match crm.account(id).await? {
                    Some(account) => account,
                    None => continue,
                },
            };
            accounts.push(account);
        }
        if !accounts.is_empty() {
            return Ok(Matched {
                account: AccountMatch::of(accounts),
                contacts,
            });
        }
        let own = own_email.and_then(company_domain);
        let mut domains: Vec<String> = emails
            .iter()
            .filter_map(|e| company_domain(e))
            .filter(|d| Some(d) != own.as_ref())
            .collect();
        domains.sort();
        domains.dedup();
        for domain in &domains {
            accounts.extend(crm.accounts_by_domain(domain).await?);
        }
        Ok(Matched {
            account: AccountMatch::of(accounts),
            contacts,
        })
    }
}

/// The external attendees' emails: as edited in the follow-up, else as Fathom listed them.
pub fn attendee_emails(followup: &Followup) -> Vec<String> {
    let edited = followup
        .current()
        .map(|d| d.attendees.clone())
        .unwrap_or_default();
    let mut emails: Vec<String> = edited
        .split(['\n', ',', ';', ' '])
        .map(|e| e.trim().trim_matches(['<', '>']).to_ascii_lowercase())
        .filter(|e| e.contains('@'))
        .collect();
    if emails.is_empty() {
        emails = followup
            .invitees
            .iter()
            .filter_map(|i| i.email.as_deref())
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| e.contains('@'))
            .collect();
    }
    let mut seen = std::collections::HashSet::new();
    emails.retain(|e| seen.insert(e.clone()));
    emails.truncate(MAX_EMAILS);
    emails
}
