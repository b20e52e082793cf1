//! Installing the app into a second workspace through the sidecar (Slack OAuth v2), with the
//! fake Slack serving two teams: the state rules, the exchange, the team's bot token sealed,
//! the welcome DM and each team's commands made with that team's own token; a team with no
//! installation is acked and never answered.

use super::google::PUBLIC;
use super::*;
use crate::support::bot::BOT_TOKEN;
use crate::support::fake_slack::Install;

const CLIENT_ID: &str = "1111.2222";
const CLIENT_SECRET: &str = "slack-SECRETclient-0001";
const OTHER: &str = "T0OTHER";
const OWNER: &str = "U0OWNER";

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn install_link(w: &World) -> (String, String) {
    let start = w.browse(&format!("{PUBLIC}/slack/install"), None).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let location = start.location.unwrap();
    assert!(
        location.starts_with("https://slack.example/oauth/v2/authorize?"),
        "{location}"
    );
    let q = query_of(&location);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert!(q["scope"].split(',').any(|s| s == "commands"), "{q:?}");
    assert_eq!(q["redirect_uri"], format!("{PUBLIC}/slack/oauth_redirect"));
    (location, q["state"].clone())
}

#[tokio::test]
async fn a_second_workspace_installs_through_the_sidecar_and_uses_its_own_token() {
    let mut w = World::new(
        Backend::Sqlite,
        false,
        &[
            ("SLACK_CLIENT_ID", CLIENT_ID),
            ("SLACK_CLIENT_SECRET", CLIENT_SECRET),
            ("PUBLIC_BASE_URL", PUBLIC),
            (
                "SLACK_AUTHORIZE_URL",
                "https://slack.example/oauth/v2/authorize",
            ),
        ],
    )
    .await;
    // The deployment's own token serves the sales team.
    w.slack.add_team(TEAM, "Sales", BOT_TOKEN);
    w.slack.set_oauth_client(CLIENT_ID, CLIENT_SECRET);
    let redirect = format!("{PUBLIC}/slack/oauth_redirect");

    // Forged: refused, no exchange.
    let forged = w
        .browse(&format!("{redirect}?state=forged&code=abc"), None)
        .await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert_eq!(w.slack.oauth_exchanges("authorization_code"), 0);

    // The install: consent (played by the fake), one exchange, the page, the welcome DM
    // sent with the new team's own token.
    let (_, state) = install_link(&w).await;
    let code = w.slack.issue_install_code(Install {
        team_id: OTHER.into(),
        team_name: "Other Co".into(),
        installer: OWNER.into(),
        enterprise_id: None,
        redirect_uri: redirect.clone(),
        rotation: false,
    });
    let callback = format!("{redirect}?code={code}&state={state}");
    let page = w.browse(&callback, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("installed in Other Co"), "{}", page.body);
    assert_eq!(w.slack.oauth_exchanges("authorization_code"), 1);
    w.wait_for_sent("chat.postMessage", "Thanks for installing", WAIT)
        .await;
    let token = w.slack.tokens_used("chat.postMessage").pop().unwrap();
    assert_eq!(w.slack.team_of_token(&token).as_deref(), Some(OTHER));
    assert_ne!(token, BOT_TOKEN);
    let posted = w.slack.calls("chat.postMessage").pop().unwrap();
    assert_eq!(
        posted.str("channel"),
        Some(crate::support::fake_slack::FakeSlack::dm_channel_id(OWNER).as_str())
    );

    // Replayed: refused, no second exchange. Expired: refused.
    let replay = w.browse(&callback, None).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_eq!(w.slack.oauth_exchanges("authorization_code"), 1);
    let (_, stale) = install_link(&w).await;
    if let followup_bot::store::Store::Sqlite(pool) = &w.app().store {
        sqlx::query("UPDATE slack_install_states SET expires_at = $1 WHERE used_at IS NULL")
            .bind(followup_bot::store::now() - chrono::Duration::minutes(11))
            .execute(pool)
            .await
            .unwrap();
    }
    let code = w.slack.issue_install_code(Install {
        team_id: OTHER.into(),
        team_name: "Other Co".into(),
        installer: OWNER.into(),
        enterprise_id: None,
        redirect_uri: redirect.clone(),
        rotation: false,
    });
    let expired = w
        .browse(&format!("{redirect}?code={code}&state={stale}"), None)
        .await;
    assert_eq!(expired.status, 400, "{}", expired.body);
    assert!(expired.body.contains("10 minutes"), "{}", expired.body);
    assert_eq!(w.slack.oauth_exchanges("authorization_code"), 1);

    // The team's token is not in clear in a raw read of the database.
    if let followup_bot::store::Store::Sqlite(pool) = &w.app().store {
        sqlx::query("PRAGMA wal_checkpoint(FULL)")
            .execute(pool)
            .await
            .unwrap();
    }
    for entry in std::fs::read_dir(w._db.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(token.len()).any(|b| b == token.as_bytes()),
            "the bot token in clear"
        );
    }

    // Each team's command is answered with its own token.
    let before = w.slack.call_count("views.open");
    let url_id = uuid::Uuid::new_v4().simple().to_string();
    let id = w.send(payloads::slash_command(
        OTHER,
        OWNER,
        "/fathom-connect",
        "",
        &w.slack.response_url(&url_id),
    ));
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    w.slack
        .wait_for_calls("views.open", before + 1, WAIT)
        .await
        .unwrap();
    assert_eq!(w.slack.tokens_used("views.open").pop().unwrap(), token);
    w.command(ADA, "/fathom-connect").await;
    w.slack
        .wait_for_calls("views.open", before + 2, WAIT)
        .await
        .unwrap();
    assert_eq!(w.slack.tokens_used("views.open").pop().unwrap(), BOT_TOKEN);

    // The other team's meeting-ready DM (the poller) and its Draft button (a job) use its
    // token too, and go to its person only.
    const OWNER_KEY: &str = "fathom-key-owner-0123456789";
    w.fathom.add_key(OWNER_KEY);
    {
        let app = w.app();
        let tenant = app.store.ensure_tenant(OTHER).await.unwrap();
        let owner = app.store.ensure_user(tenant.id, OWNER).await.unwrap();
        crate::support::put_fathom_key(&app.store, &app.cipher, &owner, OWNER_KEY).await;
        w.fathom.add_meeting(
            OWNER_KEY,
            meeting(
                71,
                "Other kickoff",
                Utc::now() - chrono::Duration::seconds(30),
                30,
            ),
        );
        let now = followup_bot::store::now();
        app.store
            .set_fathom_poll(owner.id, now - chrono::Duration::minutes(5), now)
            .await
            .unwrap();
        followup_bot::features::recordings::poll_once(app).await;
    }
    w.wait_for_sent("chat.postMessage", "Other kickoff", WAIT)
        .await;
    let dm = w
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .rfind(|c| text_of(&c.body).contains("Other kickoff"))
        .unwrap();
    assert_eq!(dm.token(), Some(token.as_str()));
    let mut click = payloads::block_actions(OTHER, OWNER, "recording_draft", "71", None);
    click["payload"]["response_url"] = json!(w.slack.response_url("owner-draft"));
    let id = w.send(click);
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    w.wait_for_sent(
        "chat.update",
        "Follow-up ready: Other kickoff",
        Duration::from_secs(30),
    )
    .await;
    let ready = w
        .slack
        .calls("chat.update")
        .into_iter()
        .rfind(|c| text_of(&c.body).contains("Follow-up ready: Other kickoff"))
        .unwrap();
    assert_eq!(
        ready.token(),
        Some(token.as_str()),
        "the draft job used the team's token"
    );
    // Ada's button on the other team's recording is someone else's.
    let bobs = w.click(ADA, "recording_draft", "71", "ada-other");
    w.slack.wait_for_ack(&bobs, WAIT).await.unwrap();
    let post = w
        .slack
        .wait_for_response_post("ada-other", WAIT)
        .await
        .unwrap();
    assert!(
        !text_of(&post.body).contains("Follow-up ready"),
        "{}",
        post.body
    );

    // A workspace with no installation: acked, never answered (with anyone's token).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = w.slack.all_calls().len();
    let url_id = uuid::Uuid::new_v4().simple().to_string();
    let id = w.send(payloads::slash_command(
        "T0NOBODY",
        "U0STRANGER",
        "/fathom-connect",
        "",
        &w.slack.response_url(&url_id),
    ));
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let made: Vec<String> = w
        .slack
        .all_calls()
        .into_iter()
        .skip(calls)
        .filter(|c| c.method != "apps.connections.open")
        .filter(|c| c.body.to_string().contains("U0STRANGER") || c.method != "users.info")
        .map(|c| format!("{} {:?} {}", c.method, c.token(), c.body))
        .collect();
    assert!(made.is_empty(), "{made:?}");

    // The other team uninstalls: its token is deleted at once and never used again, while
    // the sales team goes on working.
    w.slack.revoke_token(&token);
    let id = w.send(payloads::events_api(
        OTHER,
        json!({"type": "app_uninstalled", "event_ts": "1700000000.000100"}),
    ));
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    let tenant = w.app().store.tenant_by_team(OTHER).await.unwrap().unwrap();
    let deadline = Instant::now() + WAIT;
    while w
        .app()
        .store
        .credential(&w.app().cipher, tenant, Subject::Tenant, Provider::Slack)
        .await
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the token was not deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let used_before = w.slack.tokens_used("views.open").len();
    let url_id = uuid::Uuid::new_v4().simple().to_string();
    let id = w.send(payloads::slash_command(
        OTHER,
        OWNER,
        "/fathom-connect",
        "",
        &w.slack.response_url(&url_id),
    ));
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    w.command(ADA, "/fathom-connect").await;
    w.slack
        .wait_for_calls("views.open", before + 3, WAIT)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let used: Vec<String> = w
        .slack
        .all_calls()
        .iter()
        .filter_map(|c| c.token().map(str::to_owned))
        .collect();
    let after = w.slack.tokens_used("views.open")[used_before..].to_vec();
    assert_eq!(after, vec![BOT_TOKEN.to_owned()], "only the sales team's");
    let revoked_uses = w
        .slack
        .all_calls()
        .iter()
        .filter(|c| c.token() == Some(token.as_str()) && c.response["error"] == "token_revoked")
        .count();
    assert_eq!(
        revoked_uses, 0,
        "the revoked token was never used: {used:?}"
    );
    let audit = w.app().store.audit_entries(tenant).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "uninstall"));
    // A job of the uninstalled team is dead-lettered at once, without calling Slack.
    let calls = w.slack.all_calls().len();
    let queued = followup_bot::workspace::within(
        OTHER,
        w.app()
            .enqueue("fathom.delivery", &json!({"tenant": 0}), None),
    )
    .await
    .unwrap()
    .unwrap();
    w.running.as_ref().unwrap().run_due_jobs().await.unwrap();
    if let followup_bot::store::Store::Sqlite(pool) = &w.app().store {
        let (status, error): (String, Option<String>) =
            sqlx::query_as("SELECT status, last_error FROM jobs WHERE id = $1")
                .bind(queued)
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(status, "dead");
        assert!(error.unwrap_or_default().contains("uninstalled"));
    }
    assert!(
        w.slack.all_calls()[calls..]
            .iter()
            .all(|c| c.method == "apps.connections.open"),
        "no Slack call for the uninstalled team"
    );

    // Installing again restores the team (same team row, a new token).
    let (_, state) = install_link(&w).await;
    let code = w.slack.issue_install_code(Install {
        team_id: OTHER.into(),
        team_name: "Other Co".into(),
        installer: OWNER.into(),
        enterprise_id: None,
        redirect_uri: redirect.clone(),
        rotation: false,
    });
    let page = w
        .browse(&format!("{redirect}?code={code}&state={state}"), None)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        w.app().store.tenant_by_team(OTHER).await.unwrap(),
        Some(tenant)
    );
    w.stop().await;
}

/// A rotating bot token about to expire is refreshed once, however many calls need it.
#[tokio::test]
async fn a_rotating_token_is_refreshed_once_under_concurrent_calls() {
    let mut w = World::new(
        Backend::Postgres,
        false,
        &[
            ("SLACK_CLIENT_ID", CLIENT_ID),
            ("SLACK_CLIENT_SECRET", CLIENT_SECRET),
            ("PUBLIC_BASE_URL", PUBLIC),
            (
                "SLACK_AUTHORIZE_URL",
                "https://slack.example/oauth/v2/authorize",
            ),
        ],
    )
    .await;
    w.slack.add_team(TEAM, "Sales", BOT_TOKEN);
    w.slack.set_oauth_client(CLIENT_ID, CLIENT_SECRET);
    let redirect = format!("{PUBLIC}/slack/oauth_redirect");
    let (_, state) = install_link(&w).await;
    let code = w.slack.issue_install_code(Install {
        team_id: OTHER.into(),
        team_name: "Other Co".into(),
        installer: OWNER.into(),
        enterprise_id: None,
        redirect_uri: redirect.clone(),
        rotation: true,
    });
    let page = w
        .browse(&format!("{redirect}?code={code}&state={state}"), None)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let app = w.app();
    let tenant = app.store.tenant_by_team(OTHER).await.unwrap().unwrap();
    let stored = app
        .store
        .credential(&app.cipher, tenant, Subject::Tenant, Provider::Slack)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.expires_at.is_some(), "rotation keeps the expiry");

    app.store
        .expire_credential(tenant, Subject::Tenant, Provider::Slack)
        .await
        .unwrap();
    app.workspaces.forget(OTHER);
    let calls = (0..5)
        .map(|_| followup_bot::workspace::within(OTHER, async { app.slack.auth_test().await }));
    let answers = futures_util::future::join_all(calls).await;
    for answer in &answers {
        assert_eq!(answer.as_ref().unwrap().team_id, OTHER);
    }
    assert_eq!(w.slack.oauth_exchanges("refresh_token"), 1);
    let used = w.slack.tokens_used("auth.test");
    let newest = used.last().unwrap().clone();
    assert!(used.iter().rev().take(5).all(|t| *t == newest), "{used:?}");
    w.stop().await;
}

/// An org-wide (Enterprise Grid) install is keyed by the enterprise id, and a command from any
/// workspace of that enterprise is answered with the org's token.
#[tokio::test]
async fn an_org_wide_install_serves_the_enterprises_workspaces() {
    let mut w = World::new(
        Backend::Sqlite,
        false,
        &[
            ("SLACK_CLIENT_ID", CLIENT_ID),
            ("SLACK_CLIENT_SECRET", CLIENT_SECRET),
            ("PUBLIC_BASE_URL", PUBLIC),
            (
                "SLACK_AUTHORIZE_URL",
                "https://slack.example/oauth/v2/authorize",
            ),
        ],
    )
    .await;
    w.slack.add_team(TEAM, "Sales", BOT_TOKEN);
    w.slack.set_oauth_client(CLIENT_ID, CLIENT_SECRET);
    let redirect = format!("{PUBLIC}/slack/oauth_redirect");
    let (_, state) = install_link(&w).await;
    let code = w.slack.issue_install_code(Install {
        team_id: "T0ORGWS".into(),
        team_name: "Org workspace".into(),
        installer: OWNER.into(),
        enterprise_id: Some("E0ORG".into()),
        redirect_uri: redirect.clone(),
        rotation: false,
    });
    let page = w
        .browse(&format!("{redirect}?code={code}&state={state}"), None)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let tenant = w.app().store.tenant_by_team("E0ORG").await.unwrap();
    assert!(tenant.is_some(), "keyed by the enterprise id");
    w.wait_for_sent("chat.postMessage", "Thanks for installing", WAIT)
        .await;
    let token = w.slack.tokens_used("chat.postMessage").pop().unwrap();

    let before = w.slack.call_count("views.open");
    let url_id = uuid::Uuid::new_v4().simple().to_string();
    let mut envelope = payloads::slash_command(
        "T0ORGWS2",
        OWNER,
        "/fathom-connect",
        "",
        &w.slack.response_url(&url_id),
    );
    envelope["payload"]["is_enterprise_install"] = json!("true");
    envelope["payload"]["enterprise_id"] = json!("E0ORG");
    let id = w.send(envelope);
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    w.slack
        .wait_for_calls("views.open", before + 1, WAIT)
        .await
        .unwrap();
    assert_eq!(w.slack.tokens_used("views.open").pop().unwrap(), token);

    // That workspace's person's meeting-ready DM (the poller, which knows only the
    // workspace) uses the org's token too.
    const OWNER_KEY: &str = "fathom-key-orgowner-0123456789";
    w.fathom.add_key(OWNER_KEY);
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let app = w.app();
        let tenant = app.store.ensure_tenant("T0ORGWS2").await.unwrap();
        let owner = app.store.ensure_user(tenant.id, OWNER).await.unwrap();
        crate::support::put_fathom_key(&app.store, &app.cipher, &owner, OWNER_KEY).await;
        w.fathom.add_meeting(
            OWNER_KEY,
            meeting(
                81,
                "Org kickoff",
                Utc::now() - chrono::Duration::seconds(30),
                30,
            ),
        );
        let now = followup_bot::store::now();
        app.store
            .set_fathom_poll(owner.id, now - chrono::Duration::minutes(5), now)
            .await
            .unwrap();
        followup_bot::features::recordings::poll_once(app).await;
    }
    w.wait_for_sent("chat.postMessage", "Org kickoff", WAIT)
        .await;
    let dm = w
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .rfind(|c| text_of(&c.body).contains("Org kickoff"))
        .unwrap();
    assert_eq!(dm.token(), Some(token.as_str()));
    w.stop().await;
}
