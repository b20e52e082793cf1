//! The team's CRM as every feature reaches it: the connection (keys unsealed per call, behind
//! the shared limiter), matching a meeting's attendees to an account, and a short cache for
//! autocomplete answers.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use slack_morphism::prelude::SlackMessageContent;

use tracing::warn;

use super::Services;
use crate::clients::crm::crono::CronoKeys;
use crate::clients::crm::oauth::{CrmGrant, OAuthApp, TokenError};
use crate::clients::crm::odoo::OdooKeys;
use crate::clients::crm::{Calls, Crm, CrmError, Guard};
use crate::domain::crm::{
    Account, AccountMatch, Contact, Deal, DealChange, Listed, Listing, Made, MirrorObject, NewNote,
    NewTask, Stage, company_domain,
};
use crate::domain::followup::Followup;
use crate::domain::ids::TenantId;
use crate::domain::provider::Provider;
use crate::store::credentials::{Credential, CredentialError, NewCredential, Subject};

/// Why the team's CRM cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoCrm {
    NotConnected,
    /// Stored, but sealed with an encryption key the bot no longer has.
    Unreadable,
    /// The CRM no longer accepts the app's access (removed, or expired).
    Revoked,
    /// HubSpot or Zoho is connected but this deployment no longer has that OAuth app.
    NotConfigured,
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
            NoCrm::Revoked => {
                "The workspace's CRM no longer accepts the bot (the app was removed or its \
                 access expired). A workspace admin can connect it again with `/crono-connect`."
            }
            NoCrm::NotConfigured => {
                "The workspace's CRM needs an OAuth app this bot is no longer configured with. \
                 Tell the person who runs the bot (`doctor` shows what is missing)."
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

/// A CRM's OAuth tokens, sealed together.
#[derive(Deserialize, Serialize)]
struct CrmTokens {
    access_token: String,
    refresh_token: String,
}

/// An access token ready to use, and where (Zoho's data centre).
pub struct CrmAccess {
    pub token: SecretString,
    pub api_domain: Option<String>,
}

/// Access tokens are refreshed when they expire within this long.
const REFRESH_BEFORE: chrono::Duration = chrono::Duration::minutes(2);

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
            Provider::Hubspot | Provider::Zoho => {
                let access = match self.crm_access(tenant, provider, credential).await? {
                    Ok(access) => access,
                    Err(no) => return Ok(Err(no)),
                };
                let inner = match provider {
                    Provider::Hubspot => self.hubspot.session(access.token, guard),
                    _ => {
                        let Some(domain) = access.api_domain else {
                            warn!("the stored Zoho connection has no api_domain");
                            return Ok(Err(NoCrm::Unreadable));
                        };
                        self.zoho.session(&domain, access.token, guard)
                    }
                };
                Some(Arc::new(Distrusting {
                    inner,
                    store: self.store.clone(),
                    tenant,
                }) as Arc<dyn Crm>)
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
    /// ignored), read from the CRM mirror once it is backfilled (from the CRM before). Never
    /// a fuzzy name hit: when no single account is certain, the caller lets the person pick.
    pub async fn match_account(
        &self,
        crm: &dyn Crm,
        followup: &Followup,
        own_email: Option<&str>,
    ) -> Result<Matched, CrmError> {
        let tenant = followup.tenant_id;
        let emails = attendee_emails(followup);
        let mut contacts = Vec::new();
        for email in &emails {
            contacts.extend(self.contacts_by_email_mirrored(tenant, crm, email).await?);
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
                None => match self.account_mirrored(tenant, crm, id).await? {
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
            accounts.extend(
                self.accounts_by_domain_mirrored(tenant, crm, domain)
                    .await?,
            );
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

impl Services {
    /// The OAuth app of a CRM connected that way (HubSpot, Zoho), when configured.
    pub fn crm_oauth(&self, provider: Provider) -> Option<&OAuthApp> {
        match provider {
            Provider::Hubspot => self.hubspot.oauth.as_ref(),
            Provider::Zoho => self.zoho.oauth.as_ref(),
            _ => None,
        }
    }

    /// Saves a team's CRM grant from an OAuth callback (replacing any CRM connected before).
    /// `accounts_server` is Zoho's data centre, where refreshes go.
    pub async fn save_crm_grant(
        &self,
        tenant: TenantId,
        provider: Provider,
        grant: &CrmGrant,
        connected_by: &str,
        accounts_server: Option<&str>,
    ) -> anyhow::Result<()> {
        let Some(refresh) = &grant.refresh_token else {
            anyhow::bail!("{provider} gave no refresh token");
        };
        // Not while a refresh of the old grant is in flight (it would write the old back).
        let _refreshing = self.crm_refresh.get(tenant, provider).lock_owned().await;
        let secret = SecretString::from(serde_json::to_string(&CrmTokens {
            access_token: grant.access_token.expose_secret().to_owned(),
            refresh_token: refresh.expose_secret().to_owned(),
        })?);
        self.store
            .put_credential(
                &self.cipher,
                NewCredential {
                    tenant,
                    subject: Subject::Tenant,
                    provider,
                    secret: &secret,
                    account_email: None,
                    api_domain: grant.api_domain.as_deref(),
                    expires_at: Some(grant.expires_at),
                    scopes: None,
                    metadata: serde_json::json!({
                        "connected_by": connected_by,
                        "accounts_server": accounts_server,
                    }),
                },
            )
            .await?;
        for other in Provider::CRMS.into_iter().filter(|p| *p != provider) {
            self.store
                .delete_credential(tenant, Subject::Tenant, other)
                .await?;
        }
        self.suggestions.forget_team(tenant);
        Ok(())
    }

    /// The team's access token, refreshed first when it is about to expire: one refresh at a
    /// time per team and CRM (whoever waited finds the new token saved), so Zoho's 10 access
    /// tokens per 10 minutes are never spent on a burst.
    async fn crm_access(
        &self,
        tenant: TenantId,
        provider: Provider,
        credential: Credential,
    ) -> anyhow::Result<Result<CrmAccess, NoCrm>> {
        let Some(app) = self.crm_oauth(provider) else {
            return Ok(Err(NoCrm::NotConfigured));
        };
        let fresh = |c: &Credential| {
            c.expires_at
                .is_some_and(|at| at - crate::store::now() > REFRESH_BEFORE)
        };
        let tokens = |c: &Credential| -> Option<CrmTokens> {
            serde_json::from_str(c.secret.expose_secret()).ok()
        };
        let mut credential = credential;
        let mut held = None;
        loop {
            let Some(found) = tokens(&credential) else {
                warn!(%provider, "the stored CRM tokens are not in the expected shape");
                return Ok(Err(NoCrm::Unreadable));
            };
            if fresh(&credential) {
                return Ok(Ok(CrmAccess {
                    token: SecretString::from(found.access_token),
                    api_domain: credential.api_domain,
                }));
            }
            if held.is_some() {
                break;
            }
            held = Some(self.crm_refresh.get(tenant, provider).lock_owned().await);
            credential = match self
                .store
                .credential(&self.cipher, tenant, Subject::Tenant, provider)
                .await
            {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(Err(NoCrm::NotConnected)),
                Err(CredentialError::Database(e)) => return Err(e),
                Err(_) => return Ok(Err(NoCrm::Unreadable)),
            };
        }
        let Some(found) = tokens(&credential) else {
            return Ok(Err(NoCrm::Unreadable));
        };
        let server = credential.metadata["accounts_server"]
            .as_str()
            .map(|s| format!("{}/oauth/v2/token", s.trim_end_matches('/')));
        let refresh = SecretString::from(found.refresh_token.clone());
        match app.refresh(server.as_deref(), &refresh).await {
            Ok(grant) => {
                let grant = CrmGrant {
                    refresh_token: grant.refresh_token.or(Some(refresh)),
                    api_domain: grant.api_domain.or(credential.api_domain.clone()),
                    ..grant
                };
                let by = credential.metadata["connected_by"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let secret = SecretString::from(serde_json::to_string(&CrmTokens {
                    access_token: grant.access_token.expose_secret().to_owned(),
                    refresh_token: grant
                        .refresh_token
                        .as_ref()
                        .map(|t| t.expose_secret().to_owned())
                        .unwrap_or_default(),
                })?);
                let mut metadata = credential.metadata.clone();
                metadata["connected_by"] = serde_json::json!(by);
                self.store
                    .put_credential(
                        &self.cipher,
                        NewCredential {
                            tenant,
                            subject: Subject::Tenant,
                            provider,
                            secret: &secret,
                            account_email: None,
                            api_domain: grant.api_domain.as_deref(),
                            expires_at: Some(grant.expires_at),
                            scopes: None,
                            metadata,
                        },
                    )
                    .await?;
                tracing::info!(tenant = %tenant, %provider, "refreshed a CRM access token");
                Ok(Ok(CrmAccess {
                    token: grant.access_token,
                    api_domain: grant.api_domain,
                }))
            }
            Err(TokenError::InvalidGrant(_)) => {
                self.crm_revoked(tenant, provider, &credential).await?;
                Ok(Err(NoCrm::Revoked))
            }
            Err(e) => Err(anyhow::Error::new(e).context("refreshing a CRM access token")),
        }
    }

    /// The CRM refused the refresh token: the connection is marked revoked (never used again)
    /// and the admin who connected it is told once.
    async fn crm_revoked(
        &self,
        tenant: TenantId,
        provider: Provider,
        credential: &Credential,
    ) -> anyhow::Result<()> {
        if !self
            .store
            .revoke_credential(tenant, Subject::Tenant, provider)
            .await?
        {
            return Ok(());
        }
        warn!(tenant = %tenant, %provider, "the CRM refused the refresh token; the connection is marked revoked");
        self.store
            .audit(
                tenant,
                None,
                "revoked",
                provider.as_str(),
                "invalid_grant",
                None,
            )
            .await?;
        self.suggestions.forget_team(tenant);
        if let Some(admin) = credential.metadata["connected_by"].as_str() {
            let text = format!(
                ":warning: {} no longer accepts the bot for this workspace (the app was \
                 removed, or its access expired), so the CRM buttons and commands are paused. \
                 Run `/crono-connect` to connect it again; nothing else is lost.",
                provider.label()
            );
            if let Err(e) = self
                .dm(admin, SlackMessageContent::new().with_text(text))
                .await
            {
                warn!(error = %e, "could not tell the admin their CRM access ended");
            }
        }
        Ok(())
    }
}

/// An OAuth CRM session that, when the CRM refuses its access token before the token's
/// expiry, marks the token expired: the next use refreshes it (and learns from the refresh
/// whether the grant is gone), instead of sending the dead token until it would expire.
struct Distrusting {
    inner: Arc<dyn Crm>,
    store: crate::store::Store,
    tenant: TenantId,
}

impl Distrusting {
    async fn watch<T>(&self, result: Result<T, CrmError>) -> Result<T, CrmError> {
        if let Err(CrmError::Refused { .. }) = &result {
            let provider = self.inner.provider();
            warn!(tenant = %self.tenant, %provider, "the CRM refused a live access token; it will be refreshed");
            if let Err(e) = self
                .store
                .expire_credential(self.tenant, Subject::Tenant, provider)
                .await
            {
                warn!(error = ?e, "could not mark the CRM token expired");
            }
        }
        result
    }
}

#[async_trait::async_trait]
impl Crm for Distrusting {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn provider(&self) -> Provider {
        self.inner.provider()
    }

    async fn search_accounts(&self, query: &str, limit: usize) -> Result<Vec<Account>, CrmError> {
        self.watch(self.inner.search_accounts(query, limit).await)
            .await
    }

    async fn search_contacts(&self, query: &str, limit: usize) -> Result<Vec<Contact>, CrmError> {
        self.watch(self.inner.search_contacts(query, limit).await)
            .await
    }

    async fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, CrmError> {
        self.watch(self.inner.contacts_by_email(email).await).await
    }

    async fn accounts_by_domain(&self, domain: &str) -> Result<Vec<Account>, CrmError> {
        self.watch(self.inner.accounts_by_domain(domain).await)
            .await
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, CrmError> {
        self.watch(self.inner.account(id).await).await
    }

    async fn open_deals(&self, account_id: &str) -> Result<Vec<Deal>, CrmError> {
        self.watch(self.inner.open_deals(account_id).await).await
    }

    async fn stages(&self) -> Result<Vec<Stage>, CrmError> {
        self.watch(self.inner.stages().await).await
    }

    async fn update_deal(&self, change: &DealChange) -> Result<(), CrmError> {
        self.watch(self.inner.update_deal(change).await).await
    }

    async fn create_note(&self, note: &NewNote) -> Result<Made, CrmError> {
        self.watch(self.inner.create_note(note).await).await
    }

    async fn create_task(&self, task: &NewTask) -> Result<Made, CrmError> {
        self.watch(self.inner.create_task(task).await).await
    }

    fn account_link(&self, account_id: &str) -> Option<String> {
        self.inner.account_link(account_id)
    }

    async fn list_changed(
        &self,
        object: MirrorObject,
        listing: &Listing,
    ) -> Result<Listed, CrmError> {
        self.watch(self.inner.list_changed(object, listing).await)
            .await
    }
}
