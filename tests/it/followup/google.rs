//! Google end to end: `/gmail-connect` through the sidecar's OAuth routes to the DM, the
//! state rules, token refresh and `invalid_grant`, Gmail drafts and calendar events from a
//! follow-up, against the loopback fake Google.

use super::*;
use crate::support::fake_fathom::Invitee;
use crate::support::fake_google::FakeGoogle;
use followup_bot::store::Store;

const CLIENT_ID: &str = "cid-test.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "GOCSPX-SECRETgoogleclient0001";
/// What the bot believes its public address is; the tests reach it on loopback instead.
pub(super) const PUBLIC: &str = "https://followup.example";
const ADA_GOOGLE: &str = "ada@seller.example";

pub(super) struct G {
    pub(super) w: World,
    pub(super) google: FakeGoogle,
}

pub(super) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What the browser got from the bot: status, `Location`, the cookie it set, the body.
pub(super) struct Page {
    pub(super) status: u16,
    pub(super) location: Option<String>,
    pub(super) cookie: Option<String>,
    pub(super) body: String,
}

/// A browser reaching the bot's sidecar (its public URLs, on loopback).
impl World {
    /// The bot's public URL, reached on its real loopback address.
    pub(super) fn local(&self, url: &str) -> String {
        let addr = self.running.as_ref().unwrap().http_addr;
        assert!(url.starts_with(PUBLIC), "{url}");
        url.replacen(PUBLIC, &format!("http://{addr}"), 1)
    }

    pub(super) async fn browse(&self, url: &str, cookie: Option<&str>) -> Page {
        let mut request = browser().get(self.local(url));
        if let Some(c) = cookie {
            request = request.header("cookie", format!("followup_oauth={c}"));
        }
        let response = request.send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header("location");
        let cookie = header("set-cookie").map(|c| {
            c.split(';')
                .next()
                .unwrap()
                .trim_start_matches("followup_oauth=")
                .to_owned()
        });
        Page {
            status: response.status().as_u16(),
            location,
            cookie,
            body: response.text().await.unwrap(),
        }
    }
}

impl G {
    pub(super) async fn new(backend: Backend) -> Self {
        Self::with(backend, &[]).await
    }

    async fn with(backend: Backend, more: &[(&str, &str)]) -> Self {
        let google = FakeGoogle::start(CLIENT_ID, CLIENT_SECRET).await;
        google.set_account(ADA_GOOGLE);
        let settings = [
            ("GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
            ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("PUBLIC_BASE_URL", PUBLIC.to_owned()),
            ("GOOGLE_AUTH_URL", google.auth_url()),
            ("GOOGLE_TOKEN_URL", google.token_url()),
            ("GOOGLE_USERINFO_URL", google.userinfo_url()),
            ("GOOGLE_REVOKE_URL", google.revoke_url()),
            ("GMAIL_API_URL", google.gmail_api_url()),
            ("GOOGLE_CALENDAR_API_URL", google.calendar_api_url()),
        ];
        let mut extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        extra.extend_from_slice(more);
        let w = World::new(backend, false, &extra).await;
        G { w, google }
    }

    pub(super) fn app(&self) -> &followup_bot::services::Services {
        self.w.app()
    }

    async fn get(&self, url: &str, cookie: Option<&str>) -> Page {
        self.w.browse(url, cookie).await
    }

    /// `/gmail-connect` from `user`: the button's link (checked against the answer).
    async fn connect_link(&self, user: &str) -> String {
        let (_, url_id) = self.w.command(user, "/gmail-connect").await;
        let post = self
            .w
            .slack
            .wait_for_response_post(&url_id, WAIT)
            .await
            .unwrap();
        link_in(&post.body).expect("a Connect Google button")
    }

    /// The browser half of connecting: start, consent at the fake, callback. Returns the
    /// callback's page.
    async fn consent(&self, link: &str) -> Page {
        let start = self.get(link, None).await;
        assert_eq!(start.status, 302, "{}", start.body);
        let to_google = start.location.expect("redirects to Google");
        let callback = self.google.consent(&to_google).await.unwrap();
        self.get(&callback, start.cookie.as_deref()).await
    }

    pub(super) async fn connect(&self, user: &str) {
        let link = self.connect_link(user).await;
        let page = self.consent(&link).await;
        assert_eq!(page.status, 200, "{}", page.body);
    }

    pub(super) async fn person(
        &self,
        user: &str,
    ) -> (
        followup_bot::domain::person::Tenant,
        followup_bot::domain::person::User,
    ) {
        let store = &self.app().store;
        let tenant = store.ensure_tenant(TEAM).await.unwrap();
        let row = store.ensure_user(tenant.id, user).await.unwrap();
        (tenant, row)
    }

    /// A follow-up drafted (by the template) for a meeting with a non-ASCII title and
    /// invitee, ready in Ada's DM; returns its id.
    async fn ready_followup(&self, recording: u64) -> String {
        self.w.connect(ADA, ADA_KEY).await;
        self.w.fathom.add_meeting(
            ADA_KEY,
            meeting(
                recording,
                "Café Zürich – Q1 plan",
                // Recorded today in any time zone the tests use (the picker lists today's).
                Utc::now() - chrono::Duration::seconds(30),
                30,
            )
            .invitees(vec![
                Invitee::new("Sam Seller", "sam@seller.example", false),
                Invitee::new("José Núñez", "jose@customer.example", true),
            ]),
        );
        let picker = self.w.open_picker(ADA).await;
        let ready = self.w.pick(ADA, &picker, recording).await;
        assert!(text_of(&ready).contains("Follow-up ready"), "{ready}");
        followup_id(&ready)
    }

    /// Ada presses a follow-up button in the edit modal with these values in it.
    fn click_in_modal(&self, action: &str, id: &str, values: Value) -> String {
        let view = json!({
            "callback_id": "followup_edit",
            "private_metadata": id,
            "state": { "values": values },
        });
        let envelope = payloads::block_actions_with(
            TEAM,
            ADA,
            payloads::button_action(action, id),
            Some(view),
        );
        self.w.send(envelope)
    }
}

/// The URL of the first button that has one.
fn link_in(message: &Value) -> Option<String> {
    message["blocks"]
        .as_array()?
        .iter()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find_map(|e| e["url"].as_str().map(str::to_owned))
}

fn edit_values(subject: &str, body: &str, attendees: &str) -> Value {
    payloads::state(&[
        ("subject", "value", payloads::text_input(subject)),
        ("body", "value", payloads::text_input(body)),
        (
            "summary",
            "value",
            payloads::text_input("They want a Q1 pilot."),
        ),
        (
            "crm_note",
            "value",
            payloads::text_input("Next steps: pilot"),
        ),
        ("attendees", "value", payloads::text_input(attendees)),
    ])
}

async fn raw_sqlite_has(store: &Store, db_dir: &std::path::Path, needle: &str) -> bool {
    if let Store::Sqlite(pool) = store {
        sqlx::query("PRAGMA wal_checkpoint(FULL)")
            .execute(pool)
            .await
            .unwrap();
    }
    std::fs::read_dir(db_dir).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[tokio::test]
async fn connecting_gmail_from_the_slash_command_to_the_dm() {
    let g = G::new(Backend::Sqlite).await;
    let link = g.connect_link(ADA).await;
    assert!(
        link.starts_with(&format!("{PUBLIC}/oauth/google/start?state=")),
        "{link}"
    );

    let start = g.get(&link, None).await;
    assert_eq!(start.status, 302);
    let cookie = start.cookie.clone().expect("the browser is given a cookie");
    let to_google = url::Url::parse(start.location.as_deref().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> =
        to_google.query_pairs().into_owned().collect();
    assert!(to_google.as_str().starts_with(&g.google.auth_url()));
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], format!("{PUBLIC}/oauth/google/callback"));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["include_granted_scopes"], "true");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(!q["code_challenge"].is_empty());
    for scope in [
        "openid",
        "email",
        "https://www.googleapis.com/auth/gmail.compose",
        "https://www.googleapis.com/auth/calendar.events",
    ] {
        assert!(
            q["scope"].split(' ').any(|s| s == scope),
            "{scope} in {}",
            q["scope"]
        );
    }
    let state = q["state"].clone();
    assert!(link.ends_with(&state), "the link carries the state");

    let callback = g.google.consent(to_google.as_str()).await.unwrap();
    let page = g.get(&callback, Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&format!(
            "Gmail connected as {ADA_GOOGLE}; you can close this tab"
        )),
        "{}",
        page.body
    );
    // The token endpoint checked the PKCE verifier against the challenge.
    let exchange = g.google.token_calls();
    assert_eq!(exchange.len(), 1);
    assert_eq!(exchange[0].grant_type, "authorization_code");
    assert_eq!(exchange[0].status, 200);
    g.w.wait_for_sent(
        "chat.postMessage",
        &format!("Gmail connected as *{ADA_GOOGLE}*"),
        WAIT,
    )
    .await;
    let (tenant, ada) = g.person(ADA).await;
    assert_eq!(
        g.app().google_account(tenant.id, ada.id).await.unwrap(),
        Some(Some(ADA_GOOGLE.to_owned()))
    );

    // The same callback again: the state is single use, and nothing changes.
    let again = g.get(&callback, Some(&cookie)).await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("already used"), "{}", again.body);
    assert_eq!(g.google.token_calls().len(), 1, "no second exchange");

    // No token in clear in a raw read of the database.
    let app = g.app();
    let tokens = g.google.token_calls();
    assert!(!tokens.is_empty());
    let access = app
        .google_access(tenant.id, &ada)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&access.token).to_owned();
    assert!(token.len() > 10);
    assert!(
        !raw_sqlite_has(&app.store, g.w._db.dir.path(), &token).await,
        "access token in clear"
    );
    let audit = app.store.audit_entries(tenant.id).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "connect" && e.target == "google")
    );
}

#[tokio::test]
async fn forged_expired_replayed_and_other_browser_states_are_refused() {
    let g = G::new(Backend::Sqlite).await;
    let (tenant, ada) = g.person(ADA).await;
    let connected = || async { g.app().google_account(tenant.id, ada.id).await.unwrap() };

    // Forged: a state the bot never made, at the start and at the callback.
    let forged = g
        .get(
            &format!("{PUBLIC}/oauth/google/start?state=forged-state-0123456789"),
            None,
        )
        .await;
    assert_eq!(forged.status, 400);
    assert!(forged.body.contains("expired"), "{}", forged.body);
    let forged = g
        .get(
            &format!("{PUBLIC}/oauth/google/callback?state=forged&code=4/abc"),
            Some("x"),
        )
        .await;
    assert_eq!(forged.status, 400);

    // Another browser (or person) finishing Ada's sign-in: refused, and the state is spent.
    let link = g.connect_link(ADA).await;
    let start = g.get(&link, None).await;
    let callback = g
        .google
        .consent(start.location.as_deref().unwrap())
        .await
        .unwrap();
    let other = g.get(&callback, Some("someone-elses-cookie")).await;
    assert_eq!(other.status, 400);
    assert!(other.body.contains("another browser"), "{}", other.body);
    let none = g.get(&callback, None).await;
    assert_eq!(none.status, 400);
    // Bob opening Ada's link in his browser after she did: refused at the start.
    let bob = g.get(&link, Some("bobs-browser-cookie")).await;
    assert_eq!(bob.status, 400);
    assert_eq!(connected().await, None);

    // Expired: more than ten minutes old.
    let link = g.connect_link(ADA).await;
    let past = followup_bot::store::now() - chrono::Duration::minutes(11);
    if let Store::Sqlite(pool) = &g.app().store {
        sqlx::query("UPDATE oauth_states SET expires_at = $1 WHERE used_at IS NULL")
            .bind(past)
            .execute(pool)
            .await
            .unwrap();
    }
    let expired = g.get(&link, None).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("10 minutes"), "{}", expired.body);

    // Access denied at Google: a clear page, nothing stored.
    let link = g.connect_link(ADA).await;
    g.google.deny_next();
    let denied = g.consent(&link).await;
    assert_eq!(denied.status, 200);
    assert!(
        denied.body.contains("chose not to allow access"),
        "{}",
        denied.body
    );

    // A failed exchange: a clear page, nothing stored.
    let link = g.connect_link(ADA).await;
    g.google
        .fail_token_next(500, json!({"error": "internal_failure"}));
    let failed = g.consent(&link).await;
    assert_eq!(failed.status, 502);
    assert!(
        failed.body.contains("nothing was changed"),
        "{}",
        failed.body
    );

    // No refresh token and none stored: reconnect with consent.
    let link = g.connect_link(ADA).await;
    g.google.omit_refresh_token_next();
    let no_refresh = g.consent(&link).await;
    assert_eq!(no_refresh.status, 400);
    assert!(
        no_refresh.body.contains("myaccount.google.com/permissions"),
        "{}",
        no_refresh.body
    );
    assert_eq!(connected().await, None, "no error stored anything");

    // Replayed after success: the second use is refused and the grant is unchanged.
    g.connect(ADA).await;
    assert_eq!(connected().await, Some(Some(ADA_GOOGLE.to_owned())));
    // A later consent without a refresh token keeps the stored one.
    let link = g.connect_link(ADA).await;
    g.google.omit_refresh_token_next();
    let kept = g.consent(&link).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    g.google.expire_access_tokens();
    g.app()
        .distrust_google_access(tenant.id, ada.id)
        .await
        .unwrap();
    assert!(
        g.app()
            .google_access(tenant.id, &ada)
            .await
            .unwrap()
            .is_ok(),
        "the old refresh token still works"
    );
}

#[tokio::test]
async fn concurrent_refreshes_collapse_and_invalid_grant_asks_to_reconnect() {
    let g = G::new(Backend::Sqlite).await;
    g.google.set_access_ttl(1); // stored already within the refresh margin
    g.connect(ADA).await;
    g.google.set_access_ttl(3599);
    g.google.set_token_delay(Duration::from_millis(300));
    let (tenant, ada) = g.person(ADA).await;
    let app = g.app();
    let (a, b) = tokio::join!(
        app.google_access(tenant.id, &ada),
        app.google_access(tenant.id, &ada)
    );
    let (a, b) = (a.unwrap().ok().unwrap(), b.unwrap().ok().unwrap());
    assert_eq!(g.google.refresh_count(), 1, "one refresh for two callers");
    use secrecy::ExposeSecret;
    assert_eq!(a.token.expose_secret(), b.token.expose_secret());
    // Fresh now: no refresh at all.
    app.google_access(tenant.id, &ada)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(g.google.refresh_count(), 1);

    // Ada removes the bot's access at Google: the next refresh gets invalid_grant.
    g.google.set_token_delay(Duration::ZERO);
    g.google.revoke_grant(ADA_GOOGLE);
    app.distrust_google_access(tenant.id, ada.id).await.unwrap();
    let gone = app.google_access(tenant.id, &ada).await.unwrap();
    assert!(matches!(
        gone,
        Err(followup_bot::services::google::NoGoogle::Revoked)
    ));
    g.w.wait_for_sent(
        "chat.postMessage",
        "Type `/gmail-connect` to connect again",
        WAIT,
    )
    .await;
    assert_eq!(
        app.google_account(tenant.id, ada.id).await.unwrap(),
        None,
        "marked revoked"
    );
    // Once: asking again does not refresh or DM again.
    let dms = g.w.slack.call_count("chat.postMessage");
    let count = g.google.refresh_count();
    let again = app.google_access(tenant.id, &ada).await.unwrap();
    assert!(matches!(
        again,
        Err(followup_bot::services::google::NoGoogle::NotConnected)
    ));
    assert_eq!(g.google.refresh_count(), count);
    assert_eq!(g.w.slack.call_count("chat.postMessage"), dms);
}

#[tokio::test]
async fn gmail_disconnect_revokes_at_google_and_deletes_the_tokens() {
    let g = G::new(Backend::Sqlite).await;
    g.connect(ADA).await;
    let (_, url_id) = g.w.command(ADA, "/gmail-disconnect").await;
    let post =
        g.w.slack
            .wait_for_response_post(&url_id, WAIT)
            .await
            .unwrap();
    assert!(
        text_of(&post.body).contains("Google is disconnected"),
        "{}",
        post.body
    );
    assert_eq!(g.google.revoked_tokens().len(), 1);
    let (tenant, ada) = g.person(ADA).await;
    assert_eq!(
        g.app().google_account(tenant.id, ada.id).await.unwrap(),
        None
    );
    let (_, url_id) = g.w.command(ADA, "/gmail-disconnect").await;
    let post =
        g.w.slack
            .wait_for_response_post(&url_id, WAIT)
            .await
            .unwrap();
    assert!(text_of(&post.body).contains("nothing to disconnect"));
}

async fn gmail_draft_from_the_edit_modal(backend: Backend) {
    let g = G::new(backend).await;
    let id = g.ready_followup(901).await;

    // Not connected yet: the answer explains /gmail-connect, with its button.
    let click = g.w.click(ADA, "followup_gmail", &id, "gmail-1");
    g.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let post =
        g.w.slack
            .wait_for_response_post("gmail-1", WAIT)
            .await
            .unwrap();
    assert!(
        text_of(&post.body).contains("connect your Google account"),
        "{}",
        post.body
    );
    let link = link_in(&post.body).expect("the connect button");
    // Connected from there: the DM offers the pending draft in one click.
    let page = g.consent(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    g.w.wait_for_sent("chat.postMessage", "Save Gmail Draft", WAIT)
        .await;
    let offer =
        g.w.slack
            .calls("chat.postMessage")
            .into_iter()
            .rev()
            .find(|c| text_of(&c.body).contains("Save Gmail Draft"))
            .unwrap();
    assert!(
        text_of(&offer.body).contains(&id),
        "the offer carries the follow-up"
    );

    // Pressed in the edit modal, with edits: non-ASCII subject, names and body.
    let subject = "Próximos pasos – Café Zürich ✅";
    let body = "Hola José,\n\ngracias por la llamada. <b>Not HTML</b> & more.\n\nSaludos";
    let click = g.click_in_modal(
        "followup_gmail",
        &id,
        edit_values(
            subject,
            body,
            "jose@customer.example\nZoë Ångström <zoe@customer.example>",
        ),
    );
    g.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    // The modal says the draft is on its way (its job is queued by then).
    let deadline = Instant::now() + WAIT;
    while !g
        .w
        .slack
        .calls("views.update")
        .iter()
        .any(|c| text_of(&c.body).contains("Saving the draft to your Gmail"))
    {
        assert!(Instant::now() < deadline, "the modal never said Saving…");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A second press makes no second draft.
    let again = g.w.click(ADA, "followup_gmail", &id, "gmail-2");
    g.w.slack.wait_for_ack(&again, WAIT).await.unwrap();
    let drafts = g.google.wait_for_drafts(1, WAIT).await.unwrap();
    g.w.wait_for_sent("chat.postMessage", "Draft saved in Gmail for", WAIT)
        .await;
    // The edit modal it was pressed in says so too, with the link.
    let updated =
        g.w.slack
            .calls("views.update")
            .into_iter()
            .map(|c| text_of(&c.body))
            .collect::<Vec<_>>();
    assert!(
        updated
            .iter()
            .any(|t| t.contains("Saving the draft to your Gmail")),
        "{updated:?}"
    );
    assert!(
        updated
            .iter()
            .any(|t| t.contains("Gmail draft saved.") && t.contains("#drafts?compose=")),
        "{updated:?}"
    );
    let third = g.w.click(ADA, "followup_gmail", &id, "gmail-3");
    g.w.slack.wait_for_ack(&third, WAIT).await.unwrap();
    let post =
        g.w.slack
            .wait_for_response_post("gmail-3", WAIT)
            .await
            .unwrap();
    assert!(
        text_of(&post.body).contains("already saved as a Gmail draft"),
        "{}",
        post.body
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(g.google.drafts().len(), 1, "one draft for three presses");
    assert_eq!(drafts[0].owner, ADA_GOOGLE);

    let raw = &drafts[0].raw;
    let parsed = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("RFC 5322");
    assert_eq!(parsed.subject(), Some(subject));
    assert_eq!(parsed.text_body_count(), 1);
    assert_eq!(parsed.html_body_count(), 1);
    assert_eq!(
        parsed
            .body_text(0)
            .unwrap()
            .replace("\r\n", "\n")
            .trim_end(),
        body
    );
    let html = parsed.body_html(0).unwrap();
    assert!(
        html.contains("&lt;b&gt;Not HTML&lt;/b&gt; &amp; more."),
        "{html}"
    );
    let to: Vec<(Option<String>, String)> = parsed
        .to()
        .unwrap()
        .iter()
        .map(|a| (a.name().map(str::to_owned), a.address().unwrap().to_owned()))
        .collect();
    assert_eq!(
        to,
        [
            (
                Some("José Núñez".to_owned()),
                "jose@customer.example".to_owned()
            ),
            (
                Some("Zoë Ångström".to_owned()),
                "zoe@customer.example".to_owned()
            ),
        ]
    );
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some(ADA_GOOGLE)
    );
    use mail_parser::MimeHeaders;
    let content_type = parsed.content_type().unwrap();
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("alternative"));
    // Headers are encoded (RFC 2047), not raw UTF-8.
    let head =
        String::from_utf8_lossy(&raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()])
            .into_owned();
    assert!(head.is_ascii(), "headers are ASCII: {head}");
    assert_eq!(
        drafts[0].rfc822_message_id.as_deref(),
        Some(followup_bot::features::followup::message_id(&FollowupId(id.clone())).as_str())
    );

    // "Draft saved" links to the draft in Ada's Gmail, and the modal shows it too.
    let saved =
        g.w.slack
            .calls("chat.postMessage")
            .into_iter()
            .find(|c| text_of(&c.body).contains("Draft saved in Gmail for"))
            .unwrap();
    assert!(
        text_of(&saved.body).contains(&format!("#drafts?compose={}", drafts[0].message_id)),
        "{}",
        saved.body
    );
    assert!(text_of(&saved.body).contains("Café Zürich"));
    let (tenant, _) = g.person(ADA).await;
    let audit = g.app().store.audit_entries(tenant.id).await.unwrap();
    let entry = audit
        .iter()
        .find(|e| e.action == "gmail_draft")
        .expect("audited");
    assert_eq!(entry.target, id);
    assert_eq!(entry.outcome, "ok");
    assert_eq!(entry.detail.as_deref(), Some(drafts[0].id.as_str()));
    assert!(
        !audit
            .iter()
            .any(|e| e.detail.as_deref().is_some_and(|d| d.contains("Hola")))
    );
}

#[tokio::test]
async fn a_gmail_draft_has_both_parts_the_edits_and_the_recipients_and_is_made_once_sqlite() {
    gmail_draft_from_the_edit_modal(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_gmail_draft_has_both_parts_the_edits_and_the_recipients_and_is_made_once_postgres() {
    gmail_draft_from_the_edit_modal(Backend::Postgres).await;
}

#[tokio::test]
async fn a_retried_draft_job_finds_the_draft_an_earlier_attempt_made() {
    let g = G::with(Backend::Sqlite, &[("JOB_SHUTDOWN_GRACE_SECS", "1")]).await;
    let id = g.ready_followup(902).await;
    g.connect(ADA).await;
    // Google makes the draft but answers too late: the first attempt fails after Google
    // stored it (as if the bot died), and the retry must not make a second one.
    g.google.set_gmail_delay(Duration::from_secs(120));
    let click = g.w.click(ADA, "followup_gmail", &id, "gmail-k");
    g.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    g.google.wait_for_drafts(1, WAIT).await.unwrap();
    let mut w = g.w;
    w.stop().await; // the running attempt is abandoned; its lease outlives it
    g.google.set_gmail_delay(Duration::ZERO);
    if let Store::Sqlite(pool) = &w._db.store().await {
        sqlx::query("UPDATE jobs SET locked_until = $1 WHERE kind = 'followup.gmail_draft'")
            .bind(followup_bot::store::now() - chrono::Duration::minutes(5))
            .execute(pool)
            .await
            .unwrap();
    }
    w.start().await;
    w.running.as_ref().unwrap().run_due_jobs().await.unwrap();
    w.wait_for_sent("chat.postMessage", "Draft saved in Gmail for", WAIT)
        .await;
    assert_eq!(
        g.google.drafts().len(),
        1,
        "the retry found the first draft"
    );
}

#[tokio::test]
async fn a_calendar_event_in_the_persons_time_zone_without_invitations_by_default() {
    let g = G::new(Backend::Sqlite).await;
    g.w.slack.set_user(
        ADA,
        json!({
            "id": ADA, "team_id": TEAM, "name": "ada", "real_name": "Ada Seller", "tz": "America/New_York",
            "tz_offset": -18000, "profile": { "email": "ada@seller.example", "real_name": "Ada Seller" }
        }),
    );
    let id = g.ready_followup(903).await;
    g.connect(ADA).await;
    let opened_before = g.w.slack.call_count("views.open");
    let click = g.w.click(ADA, "followup_calendar", &id, "cal-1");
    g.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let opened =
        g.w.slack
            .wait_for_calls("views.open", opened_before + 1, WAIT)
            .await
            .unwrap();
    let modal = opened[opened_before].body["view"].clone();
    let modal: Value = match modal {
        Value::String(s) => serde_json::from_str(&s).unwrap(),
        v => v,
    };
    assert_eq!(modal["callback_id"], "followup_calendar");
    let text = text_of(&modal);
    assert!(text.contains("Follow-up: Café Zürich – Q1 plan"), "{text}");
    assert!(text.contains("America/New_York"), "{text}");
    assert!(text.contains("jose@customer.example"), "{text}");
    // A week after the meeting, at its hour in New York.
    // The meeting started 30 minutes before Fathom listed it (30 s ago).
    let started = Utc::now() - chrono::Duration::seconds(30 + 30 * 60);
    let local = (started + chrono::Duration::days(7))
        .with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).unwrap());
    let date_block = modal["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_id"] == "date")
        .unwrap();
    assert_eq!(
        date_block["element"]["initial_date"],
        local.format("%Y-%m-%d").to_string()
    );
    let invite_ticked = modal["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_id"] == "options")
        .unwrap()["element"]
        .get("initial_options");
    assert!(invite_ticked.is_none(), "no option is ticked by default");

    let submit = || {
        payloads::view_submission_for(
            TEAM,
            ADA,
            &modal,
            payloads::state(&[
                (
                    "title",
                    "value",
                    payloads::text_input("Follow-up: Café Zürich"),
                ),
                ("date", "value", payloads::date_input("2027-01-12")),
                ("time", "value", payloads::time_input("09:30")),
                (
                    "duration",
                    "value",
                    payloads::static_select_input("45", "45 minutes"),
                ),
                (
                    "attendees",
                    "value",
                    payloads::text_input("jose@customer.example"),
                ),
                ("description", "value", payloads::text_input("Pilot review")),
            ]),
        )
    };
    // A typo in the attendees is shown inline.
    let mut bad = submit();
    bad["payload"]["view"]["state"]["values"]["attendees"]["value"]["value"] =
        json!("jose@customer");
    let ack = g.w.slack.wait_for_ack(&g.w.send(bad), WAIT).await.unwrap();
    assert!(text_of(&ack.payload.unwrap()).contains("Not an email address"));
    // Submitted twice: one event.
    let first = g.w.send(submit());
    let second = g.w.send(submit());
    let ack = g.w.slack.wait_for_ack(&first, WAIT).await.unwrap();
    assert!(
        ack.payload.is_none() || ack.payload == Some(Value::Null),
        "{ack:?}"
    );
    g.w.slack.wait_for_ack(&second, WAIT).await.unwrap();
    let events = g.google.wait_for_events(1, WAIT).await.unwrap();
    g.w.wait_for_sent("chat.postMessage", "no invitations were emailed", WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(g.google.events().len(), 1);
    let event = &events[0];
    assert_eq!(
        event.query.get("sendUpdates").map(String::as_str),
        Some("none")
    );
    assert_eq!(event.body["start"]["dateTime"], "2027-01-12T09:30:00");
    assert_eq!(event.body["start"]["timeZone"], "America/New_York");
    assert_eq!(event.body["end"]["dateTime"], "2027-01-12T10:15:00");
    assert_eq!(
        event.body["attendees"],
        json!([{ "email": "jose@customer.example" }])
    );
    assert_eq!(event.body["summary"], "Follow-up: Café Zürich");
    assert!(event.body.get("conferenceData").is_none());
    assert_eq!(
        event.id,
        followup_bot::features::followup::event_id(&FollowupId(id.clone()))
    );
    let (tenant, _) = g.person(ADA).await;
    let audit = g.app().store.audit_entries(tenant.id).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "calendar_event" && e.target == id && e.outcome == "ok")
    );
}

#[tokio::test]
async fn an_unticked_permission_is_refused_with_a_clear_page() {
    let g = G::new(Backend::Sqlite).await;
    let link = g.connect_link(ADA).await;
    g.google
        .uncheck_scopes_next(&["https://www.googleapis.com/auth/gmail.compose"]);
    let page = g.consent(&link).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("write Gmail drafts"), "{}", page.body);
    let (tenant, ada) = g.person(ADA).await;
    assert_eq!(
        g.app().google_account(tenant.id, ada.id).await.unwrap(),
        None
    );
}

/// A Meet link and emailed invitations, when the person asks for them; a second insert of
/// the same event answers with the first.
#[tokio::test]
async fn an_event_with_a_meet_link_and_invitations_when_asked_is_made_once() {
    let g = G::new(Backend::Sqlite).await;
    g.connect(ADA).await;
    let (tenant, ada) = g.person(ADA).await;
    let app = g.app();
    let access = app
        .google_access(tenant.id, &ada)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let google = app.google.as_ref().unwrap();
    let event = followup_bot::clients::google::NewEvent {
        id: followup_bot::features::followup::event_id(&FollowupId("f00d".into())),
        summary: "Follow-up: Initech".into(),
        description: "Pilot".into(),
        start: "2027-02-01T15:00:00".parse().unwrap(),
        end: "2027-02-01T15:30:00".parse().unwrap(),
        time_zone: "Europe/Rome".into(),
        attendees: vec!["cto@initech.example".into()],
        meet: true,
        invite: true,
    };
    let made = google.insert_event(&access.token, &event).await.unwrap();
    assert!(made.meet_link.is_some());
    let again = google.insert_event(&access.token, &event).await.unwrap();
    assert_eq!(again.id, made.id);
    assert_eq!(again.html_link, made.html_link);
    let events = g.google.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].query["sendUpdates"], "all");
    assert_eq!(events[0].query["conferenceDataVersion"], "1");
    assert_eq!(
        events[0].body["conferenceData"]["createRequest"]["conferenceSolutionKey"]["type"],
        "hangoutsMeet"
    );
}
