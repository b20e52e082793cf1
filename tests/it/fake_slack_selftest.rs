//! Checks the test fakes themselves: payload builders against slack-morphism's models, the fake
//! Web API against slack-morphism's client, and the fake Socket Mode server against a plain
//! tokio-tungstenite client.

use crate::support::{fake_slack, payloads};

use std::time::{Duration, Instant};

use fake_slack::{CloseKind, FakeSlack};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(5);

type Connector = SlackClientHyperConnector<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn slack_client(fake: &FakeSlack) -> SlackClient<Connector> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .expect("native roots")
        .https_or_http()
        .enable_http1()
        .build();
    SlackClient::new(
        SlackClientHyperConnector::with_connector(https).with_slack_api_url(&fake.api_url()),
    )
}

fn payload(envelope: &Value) -> Value {
    envelope["payload"].clone()
}

// ------------------------------------------------------------------------ (a) payloads

#[test]
fn payload_builders_parse_with_slack_morphism() {
    // slash command
    let env = payloads::slash_command(
        "T1",
        "U1",
        "/followup",
        "acme",
        "http://127.0.0.1:1/response/r1",
    );
    assert_eq!(env["type"], "slash_commands");
    assert_eq!(env["accepts_response_payload"], true);
    let cmd: SlackCommandEvent = serde_json::from_value(payload(&env)).unwrap();
    assert_eq!(cmd.command.0, "/followup");
    assert_eq!(cmd.text.as_deref(), Some("acme"));
    assert_eq!(cmd.user_id.0, "U1");
    assert_eq!(cmd.team_id.0, "T1");

    // block_actions in a DM message
    let env = payloads::block_actions("T1", "U1", "open_followup", "rec-42", None);
    assert_eq!(env["accepts_response_payload"], false);
    match serde_json::from_value::<SlackInteractionEvent>(payload(&env)).unwrap() {
        SlackInteractionEvent::BlockActions(ev) => {
            let action = &ev.actions.as_ref().unwrap()[0];
            assert_eq!(action.action_id.0, "open_followup");
            assert_eq!(action.value.as_deref(), Some("rec-42"));
            assert!(matches!(
                ev.container,
                SlackInteractionActionContainer::Message(_)
            ));
            assert_eq!(ev.channel.unwrap().id.0, "D1");
            assert!(ev.message.unwrap().content.blocks.is_some());
            assert!(ev.response_url.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }

    // block_actions in a modal, with a select
    let view = json!({"type": "modal", "callback_id": "followup_edit",
        "title": {"type": "plain_text", "text": "Edit"}, "blocks": []});
    let env = payloads::block_actions_with(
        "T1",
        "U1",
        payloads::static_select_action("stage", "s2", "Negotiation"),
        Some(view),
    );
    match serde_json::from_value::<SlackInteractionEvent>(payload(&env)).unwrap() {
        SlackInteractionEvent::BlockActions(ev) => {
            assert!(matches!(
                ev.container,
                SlackInteractionActionContainer::View(_)
            ));
            let action = &ev.actions.as_ref().unwrap()[0];
            assert_eq!(action.selected_option.as_ref().unwrap().value, "s2");
            match ev.view.unwrap() {
                SlackView::Modal(m) => assert_eq!(m.callback_id.unwrap().0, "followup_edit"),
                other => panic!("unexpected {other:?}"),
            }
        }
        other => panic!("unexpected {other:?}"),
    }

    // a select in a DM message
    let env = payloads::block_actions_with(
        "T1",
        "U1",
        payloads::static_select_action("task_type", "call", "Call"),
        None,
    );
    match serde_json::from_value::<SlackInteractionEvent>(payload(&env)).unwrap() {
        SlackInteractionEvent::BlockActions(ev) => {
            assert!(matches!(
                ev.container,
                SlackInteractionActionContainer::Message(_)
            ));
            let action = &ev.actions.as_ref().unwrap()[0];
            assert_eq!(action.selected_option.as_ref().unwrap().value, "call");
        }
        other => panic!("unexpected {other:?}"),
    }

    // view_submission
    let values = payloads::state(&[
        (
            "subject_block",
            "subject",
            payloads::text_input("Next steps"),
        ),
        ("date_block", "date", payloads::date_input("2026-12-01")),
        ("time_block", "time", payloads::time_input("09:30")),
        (
            "type_block",
            "type",
            payloads::static_select_input("call", "Call"),
        ),
        (
            "contact_block",
            "contact",
            payloads::external_select_input("c-9", "Ann Lee"),
        ),
        ("desc_block", "desc", payloads::empty_text_input()),
    ]);
    let env = payloads::view_submission("T1", "U1", "task_create", "{\"followup\":7}", values);
    assert_eq!(env["accepts_response_payload"], true);
    match serde_json::from_value::<SlackInteractionEvent>(payload(&env)).unwrap() {
        SlackInteractionEvent::ViewSubmission(ev) => {
            let state = ev.view.state_params.state.unwrap();
            let v = |b: &str, a: &str| state.values[&b.into()][&a.into()].clone();
            assert_eq!(
                v("subject_block", "subject").value.as_deref(),
                Some("Next steps")
            );
            assert_eq!(
                v("date_block", "date").selected_date.as_deref(),
                Some("2026-12-01")
            );
            assert_eq!(
                v("time_block", "time").selected_time.as_deref(),
                Some("09:30")
            );
            assert_eq!(
                v("type_block", "type").selected_option.unwrap().value,
                "call"
            );
            assert_eq!(
                v("contact_block", "contact").selected_option.unwrap().value,
                "c-9"
            );
            assert_eq!(v("desc_block", "desc").value, None);
            match ev.view.view {
                SlackView::Modal(m) => {
                    assert_eq!(m.callback_id.unwrap().0, "task_create");
                    assert_eq!(m.private_metadata.as_deref(), Some("{\"followup\":7}"));
                }
                other => panic!("unexpected {other:?}"),
            }
            assert!(ev.trigger_id.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }

    // view_closed
    let env = payloads::view_closed("T1", "U1", "followup_edit", "meta");
    match serde_json::from_value::<SlackInteractionEvent>(payload(&env)).unwrap() {
        SlackInteractionEvent::ViewClosed(ev) => assert_eq!(ev.user.id.0, "U1"),
        other => panic!("unexpected {other:?}"),
    }

    // block_suggestion
    let env = payloads::block_suggestion("T1", "U1", "contact", "an");
    assert_eq!(env["accepts_response_payload"], true);
    match serde_json::from_value::<SlackInteractionEvent>(payload(&env)).unwrap() {
        SlackInteractionEvent::BlockSuggestion(ev) => {
            assert_eq!(ev.action_id.0, "contact");
            assert_eq!(ev.block_id.0, "contact_block");
            assert_eq!(ev.value, "an");
        }
        other => panic!("unexpected {other:?}"),
    }

    // app_home_opened (events_api)
    let env = payloads::app_home_opened("T1", "U1");
    assert_eq!(env["type"], "events_api");
    assert_eq!(env["retry_attempt"], 0);
    let cb: SlackPushEventCallback = serde_json::from_value(payload(&env)).unwrap();
    match &cb.event {
        SlackEventCallbackBody::AppHomeOpened(ev) => {
            assert_eq!(ev.user.0, "U1");
            assert_eq!(ev.channel.0, "D1");
            assert_eq!(ev.tab.as_deref(), Some("home"));
        }
        other => panic!("fell through to {other:?}"),
    }

    // with_retry
    let retry = payloads::with_retry(&env, 1);
    assert_ne!(retry["envelope_id"], env["envelope_id"]);
    assert_eq!(retry["payload"]["event_id"], env["payload"]["event_id"]);
    assert_eq!(retry["retry_attempt"], 1);
    assert_eq!(retry["retry_reason"], "timeout");
    let cb2: SlackPushEventCallback = serde_json::from_value(payload(&retry)).unwrap();
    assert_eq!(cb2.event_id, cb.event_id);
}

// ------------------------------------------------------------------------ (b) Web API

fn test_view(callback_id: &str) -> SlackView {
    serde_json::from_value(json!({
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": "{\"followup\":7}",
        "title": {"type": "plain_text", "text": "Edit follow-up"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "notify_on_close": true,
        "blocks": [
            {"type": "input", "block_id": "subject_block",
             "label": {"type": "plain_text", "text": "Subject"},
             "element": {"type": "plain_text_input", "action_id": "subject"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Summary*"}}
        ]
    }))
    .unwrap()
}

#[tokio::test]
async fn web_api_answers_parse_with_slack_morphism_client() -> anyhow::Result<()> {
    let fake = FakeSlack::start().await;
    assert!(fake.api_url().starts_with("http://127.0.0.1:") && fake.api_url().ends_with("/api"));
    let client = slack_client(&fake);
    let bot_token = SlackApiToken::new("xoxb-1-test".into());
    let s = client.open_session(&bot_token);

    // auth.test
    let auth = s.auth_test().await?;
    assert_eq!(auth.user_id.0, fake_slack::BOT_USER_ID);
    assert_eq!(auth.team_id.0, fake_slack::TEAM_ID);
    assert_eq!(auth.bot_id.unwrap().0, fake_slack::BOT_ID);

    // users.info (default + override)
    let u = s
        .users_info(&SlackApiUsersInfoRequest::new("U1".into()))
        .await?
        .user;
    assert_eq!(u.tz.as_deref(), Some("Europe/Rome"));
    assert_eq!(u.tz_offset, Some(3600));
    let p = u.profile.unwrap();
    assert_eq!(p.email.unwrap().0, "u1@example.com");
    assert!(p.real_name.is_some() && p.display_name.is_some());
    fake.set_user(
        "U2",
        json!({"tz": "America/New_York", "tz_offset": -18000, "profile": {"email": "ann@acme.io"}}),
    );
    let u2 = s
        .users_info(&SlackApiUsersInfoRequest::new("U2".into()))
        .await?
        .user;
    assert_eq!(u2.tz.as_deref(), Some("America/New_York"));
    assert_eq!(
        u2.profile.as_ref().unwrap().email.as_ref().unwrap().0,
        "ann@acme.io"
    );
    assert_eq!(
        u2.profile.unwrap().real_name.as_deref(),
        Some("Test User U2")
    );
    assert_eq!(fake.calls("users.info")[0].http_method, "GET");
    fake.set_user_not_found("U3");
    match s
        .users_info(&SlackApiUsersInfoRequest::new("U3".into()))
        .await
    {
        Err(SlackClientError::ApiError(e)) => assert_eq!(e.code, "user_not_found"),
        other => panic!("unexpected {other:?}"),
    }

    // conversations.open
    let req = SlackApiConversationsOpenRequest::new().with_users(vec!["U1".into()]);
    let dm = s.conversations_open(&req).await?;
    assert_eq!(dm.channel.id.0, "D1");
    assert_eq!(dm.already_open, None);
    let again = s.conversations_open(&req).await?;
    assert_eq!(again.channel.id.0, "D1");
    assert_eq!(again.already_open, Some(true));
    let full = s.conversations_open_full(&req).await?;
    assert_eq!(full.channel.id.0, "D1");
    assert_eq!(full.channel.flags.is_im, Some(true));
    assert_eq!(FakeSlack::dm_channel_id("U1"), "D1");

    // chat.postMessage / chat.update / chat.postEphemeral
    let blocks: Vec<SlackBlock> = serde_json::from_value(json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": "*New recording*"}},
        {"type": "actions", "elements": [{"type": "button", "action_id": "open_followup",
            "text": {"type": "plain_text", "text": "Follow up"}, "value": "rec-1"}]}
    ]))?;
    let content = SlackMessageContent::new()
        .with_text("New recording".into())
        .with_blocks(blocks);
    let posted = s
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            dm.channel.id.clone(),
            content.clone(),
        ))
        .await?;
    assert_eq!(posted.channel.0, "D1");
    assert_eq!(posted.message.origin.ts, posted.ts);
    assert_eq!(
        posted.message.content.blocks.as_ref().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        posted.message.sender.bot_id.as_ref().unwrap().0,
        fake_slack::BOT_ID
    );
    let to_user = s
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "U7".into(),
            content.clone(),
        ))
        .await?;
    assert_eq!(to_user.channel.0, "D7");
    let updated = s
        .chat_update(&SlackApiChatUpdateRequest::new(
            posted.channel.clone(),
            SlackMessageContent::new().with_text("Done".into()),
            posted.ts.clone(),
        ))
        .await?;
    assert_eq!(updated.ts, posted.ts);
    assert_eq!(updated.message.content.text.as_deref(), Some("Done"));
    s.chat_post_ephemeral(&SlackApiChatPostEphemeralRequest::new(
        "C1".into(),
        "U1".into(),
        SlackMessageContent::new().with_text("only you".into()),
    ))
    .await?;
    let call = fake.wait_for_call("chat.postMessage", WAIT).await?;
    assert_eq!(call.authorization.as_deref(), Some("Bearer xoxb-1-test"));
    assert_eq!(call.token(), Some("xoxb-1-test"));
    assert_eq!(call.str("channel"), Some("D1"));
    assert!(call.body["blocks"].is_array());
    assert_eq!(call.response["ok"], true);
    assert_eq!(
        fake.wait_for_calls("chat.postMessage", 2, WAIT)
            .await?
            .len(),
        2
    );

    // views.open / update / push / publish
    let opened = s
        .views_open(&SlackApiViewsOpenRequest::new(
            "1.2.abc".into(),
            test_view("followup_edit"),
        ))
        .await?
        .view;
    let id = opened.state_params.id.clone();
    assert!(id.0.starts_with('V'));
    assert_eq!(opened.state_params.team_id.0, fake_slack::TEAM_ID);
    match &opened.view {
        SlackView::Modal(m) => {
            assert_eq!(m.callback_id.as_ref().unwrap().0, "followup_edit");
            assert_eq!(m.blocks.len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(fake.view(&id.0).is_some());
    let upd = s
        .views_update(
            &SlackApiViewsUpdateRequest::new(test_view("followup_edit"))
                .with_view_id(id.clone())
                .with_hash(opened.state_params.hash.clone()),
        )
        .await?
        .view;
    assert_eq!(upd.state_params.id, id);
    assert_ne!(upd.state_params.hash, opened.state_params.hash);
    match s
        .views_update(
            &SlackApiViewsUpdateRequest::new(test_view("followup_edit"))
                .with_view_id(id.clone())
                .with_hash(opened.state_params.hash.clone()),
        )
        .await
    {
        Err(SlackClientError::ApiError(e)) => assert_eq!(e.code, "hash_conflict"),
        other => panic!("unexpected {other:?}"),
    }
    let pushed = s
        .views_push(&SlackApiViewsPushRequest::new(
            "1.2.def".into(),
            test_view("task_create"),
        ))
        .await?
        .view;
    assert_ne!(pushed.state_params.id, id);
    let home: SlackView = serde_json::from_value(json!({"type": "home", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Follow-up bot"}}]}))?;
    let published = s
        .views_publish(&SlackApiViewsPublishRequest::new("U1".into(), home.clone()))
        .await?
        .view;
    let republished = s
        .views_publish(&SlackApiViewsPublishRequest::new("U1".into(), home))
        .await?
        .view;
    assert_eq!(published.state_params.id, republished.state_params.id);
    assert!(matches!(published.view, SlackView::Home(_)));

    // apps.connections.open needs the app token
    match s
        .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
        .await
    {
        Err(SlackClientError::ApiError(e)) => assert_eq!(e.code, "invalid_auth"),
        other => panic!("unexpected {other:?}"),
    }
    let app_token = SlackApiToken::new("xapp-1-A1-1-test".into());
    let url = client
        .open_session(&app_token)
        .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
        .await?
        .url;
    assert!(url.0.as_str().starts_with("ws://127.0.0.1:"));
    assert!(url.0.as_str().contains("/link/?ticket="));

    // errors, rate limits, overrides, delays
    fake.set_rate_limited("chat.postMessage", 7, Some(1));
    match s
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C1".into(),
            content.clone(),
        ))
        .await
    {
        Err(SlackClientError::RateLimitError(e)) => {
            assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
            assert_eq!(e.code.as_deref(), Some("ratelimited"));
        }
        other => panic!("unexpected {other:?}"),
    }
    s.chat_post_message(&SlackApiChatPostMessageRequest::new(
        "C1".into(),
        content.clone(),
    ))
    .await?;
    fake.set_error("chat.update", "ratelimited");
    assert!(matches!(
        s.chat_update(&SlackApiChatUpdateRequest::new(
            "C1".into(),
            content.clone(),
            "1.1".into()
        ))
        .await,
        Err(SlackClientError::RateLimitError(_))
    ));
    fake.clear_error("chat.update");
    fake.set_error_times("views.open", "expired_trigger_id", 1);
    match s
        .views_open(&SlackApiViewsOpenRequest::new(
            "9.9.x".into(),
            test_view("x"),
        ))
        .await
    {
        Err(SlackClientError::ApiError(e)) => assert_eq!(e.code, "expired_trigger_id"),
        other => panic!("unexpected {other:?}"),
    }
    s.views_open(&SlackApiViewsOpenRequest::new(
        "9.9.y".into(),
        test_view("x"),
    ))
    .await?;
    fake.set_response(
        "auth.test",
        json!({"ok": false, "error": "account_inactive"}),
    );
    match s.auth_test().await {
        Err(SlackClientError::ApiError(e)) => assert_eq!(e.code, "account_inactive"),
        other => panic!("unexpected {other:?}"),
    }
    fake.clear_response("auth.test");
    fake.set_delay("auth.test", Duration::from_millis(300));
    let t0 = Instant::now();
    s.auth_test().await?;
    assert!(t0.elapsed() >= Duration::from_millis(300));

    // form-encoded and unknown methods through a plain HTTP client
    let http = reqwest::Client::new();
    let r: Value = http
        .post(format!("{}/chat.postMessage", fake.api_url()))
        .form(&[
            ("token", "xoxb-form"),
            ("channel", "C9"),
            ("text", "hi"),
            ("blocks", r#"[{"type":"divider"}]"#),
        ])
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(r["ok"], true);
    assert_eq!(r["channel"], "C9");
    let c = fake.calls("chat.postMessage").pop().unwrap();
    assert_eq!(c.token(), Some("xoxb-form"));
    assert_eq!(c.body["blocks"][0]["type"], "divider");
    assert!(
        c.content_type
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let r: Value = http
        .post(format!("{}/files.upload", fake.api_url()))
        .bearer_auth("xoxb-1-test")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(r["error"], "unknown_method");
    let r: Value = http
        .post(format!("{}/chat.postMessage", fake.api_url()))
        .json(&json!({"channel": "C1", "text": "x"}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(r["error"], "not_authed");

    // response_url
    let resp = http
        .post(fake.response_url("r1"))
        .json(&json!({"response_type": "ephemeral", "text": "Working on it"}))
        .send()
        .await?;
    assert!(resp.status().is_success());
    let post = fake.wait_for_response_post("r1", WAIT).await?;
    assert_eq!(post.body["text"], "Working on it");
    assert!(
        fake.wait_for_call("chat.delete", Duration::from_millis(50))
            .await
            .is_err()
    );
    Ok(())
}

// ------------------------------------------------------------------------ (c) Socket Mode

async fn open_url(fake: &FakeSlack) -> anyhow::Result<String> {
    let r: Value = reqwest::Client::new()
        .post(format!("{}/apps.connections.open", fake.api_url()))
        .bearer_auth("xapp-1-A1-1-test")
        .send()
        .await?
        .json()
        .await?;
    Ok(r["url"].as_str().unwrap().to_string())
}

async fn connect(fake: &FakeSlack) -> anyhow::Result<(Ws, Value)> {
    let url = open_url(fake).await?;
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await?;
    let hello = next_json(&mut ws).await?;
    Ok((ws, hello))
}

async fn next_json(ws: &mut Ws) -> anyhow::Result<Value> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await? {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("websocket ended"),
        }
    }
}

#[tokio::test]
async fn socket_mode_hello_envelope_ack_and_controls() -> anyhow::Result<()> {
    let fake = FakeSlack::start().await;

    // hello, complete and parseable
    let url = open_url(&fake).await?;
    let (mut ws1, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await?;
    let hello = next_json(&mut ws1).await?;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["num_connections"], 1);
    // slack-morphism's Socket Mode event types are not public; check the fields it requires.
    assert_eq!(hello["debug_info"]["host"], "applink-1");
    assert_eq!(hello["connection_info"]["app_id"], "A1");
    // tickets are single use
    assert!(
        tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
            .await
            .is_err()
    );
    assert_eq!(fake.rejected_handshakes(), 1);
    let ids = fake.wait_for_connections(1, WAIT).await?;
    let c1 = ids[0];
    assert_eq!(fake.open_connections(), 1);

    // envelope -> ack with payload, latency recorded
    let env = payloads::slash_command("T1", "U1", "/followup", "", &fake.response_url("r1"));
    let id = fake.send_envelope(env.clone())?;
    assert_eq!(id, payloads::envelope_id(&env));
    let got = next_json(&mut ws1).await?;
    assert_eq!(got["envelope_id"], id.as_str());
    assert_eq!(got["payload"]["command"], "/followup");
    ws1.send(Message::text(
        json!({"envelope_id": id, "payload": {"text": "On it"}}).to_string(),
    ))
    .await?;
    let ack = fake.wait_for_ack(&id, WAIT).await?;
    assert_eq!(ack.conn_id, c1);
    assert_eq!(ack.payload.as_ref().unwrap()["text"], "On it");
    let latency = ack.latency.expect("latency");
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    // a second ack of the same envelope is counted
    ws1.send(Message::text(json!({"envelope_id": id}).to_string()))
        .await?;
    tokio::time::timeout(WAIT, async {
        while fake.ack_count(&id) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await?;
    assert_eq!(fake.acks().len(), 2);

    // pings are answered
    ws1.send(Message::Ping(b"hi".to_vec().into())).await?;
    loop {
        match tokio::time::timeout(WAIT, ws1.next()).await? {
            Some(Ok(Message::Pong(p))) => {
                assert_eq!(&p[..], b"hi");
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(fake.connection(c1).unwrap().pings_received, 1);

    // malformed frame
    fake.send_raw("{not json")?;
    match tokio::time::timeout(WAIT, ws1.next()).await? {
        Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), "{not json"),
        other => panic!("unexpected {other:?}"),
    }

    // a second connection: round robin across both
    let (mut ws2, hello2) = connect(&fake).await?;
    assert_eq!(hello2["num_connections"], 2);
    let ids = fake.wait_for_connections(2, WAIT).await?;
    let c2 = ids[1];
    let a = fake.send_envelope(payloads::app_home_opened("T1", "U1"))?;
    let b = fake.send_envelope(payloads::app_home_opened("T1", "U1"))?;
    let on1 = next_json(&mut ws1).await?;
    let on2 = next_json(&mut ws2).await?;
    let mut seen = [on1["envelope_id"].clone(), on2["envelope_id"].clone()];
    seen.sort_by_key(|v| v.to_string());
    let mut want = [json!(a), json!(b)];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(seen, want);

    // refresh: disconnect c1, the client opens c3 first, then closes c1 -> replaced
    fake.send_disconnect(c1, "refresh_requested")?;
    let d = next_json(&mut ws1).await?;
    assert_eq!(d["type"], "disconnect");
    assert_eq!(d["reason"], "refresh_requested");
    assert_eq!(d["debug_info"]["host"], "applink-1");
    assert_eq!(fake.replaced_before_close(c1), None);
    // while c1 is draining, envelopes prefer the others
    let e = fake.send_envelope(payloads::block_suggestion("T1", "U1", "contact", "an"))?;
    assert_eq!(next_json(&mut ws2).await?["envelope_id"], e.as_str());
    let (mut ws3, _) = connect(&fake).await?;
    ws1.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
    .await?;
    let closed = fake.wait_for_connection_closed(c1, WAIT).await?;
    assert_eq!(
        closed.close_kind,
        Some(CloseKind::ClientCloseFrame(Some(1000)))
    );
    assert_eq!(fake.replaced_before_close(c1), Some(true));

    // disconnect without replacement -> not replaced
    fake.send_disconnect_with(c2, "warning", false)?;
    let d = next_json(&mut ws2).await?;
    assert!(d.get("debug_info").is_none());
    ws2.close(None).await?;
    fake.wait_for_connection_closed(c2, WAIT).await?;
    assert_eq!(fake.replaced_before_close(c2), Some(false));
    assert_eq!(fake.open_connections(), 1);
    assert_eq!(fake.connections_opened_total(), 3);
    let c3 = fake.open_connection_ids()[0];

    // drop: the client sees the stream end without a close frame
    fake.drop_connection(c3)?;
    loop {
        match tokio::time::timeout(WAIT, ws3.next()).await? {
            Some(Ok(Message::Close(_))) => panic!("got a close frame"),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        }
    }
    assert_eq!(
        fake.connection(c3).unwrap().close_kind,
        Some(CloseKind::ServerDropped)
    );
    assert_eq!(fake.open_connections(), 0);
    assert!(fake.send_envelope(json!({"type": "events_api"})).is_err());

    // silent: no pong, envelopes lost; the client hanging up is noticed
    fake.set_hello_without_debug_info(true);
    let (mut ws4, hello4) = connect(&fake).await?;
    assert_eq!(hello4, json!({"type": "hello"}));
    let c4 = fake.wait_for_connections(1, WAIT).await?[0];
    fake.go_silent(c4)?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        fake.send_envelope(payloads::app_home_opened("T1", "U1"))
            .is_err()
    );
    let lost = fake.send_envelope_to(c4, payloads::app_home_opened("T1", "U1"))?;
    ws4.send(Message::Ping(b"x".to_vec().into())).await?;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), ws4.next())
            .await
            .is_err()
    );
    tokio::time::timeout(WAIT, async {
        while !fake
            .sent_frames()
            .iter()
            .any(|f| f.envelope_id.as_deref() == Some(lost.as_str()))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await?;
    assert!(
        !fake
            .sent_frames()
            .iter()
            .find(|f| f.envelope_id.as_deref() == Some(lost.as_str()))
            .unwrap()
            .delivered
    );
    assert_eq!(fake.open_connections(), 1);
    drop(ws4);
    let info = fake.wait_for_connection_closed(c4, WAIT).await?;
    assert!(info.silent);
    assert_eq!(info.close_kind, Some(CloseKind::ClientEof));
    fake.wait_for_total_connections(4, WAIT).await?;

    // abrupt client hang-up is noticed too
    let (ws5, _) = connect(&fake).await?;
    let c5 = fake.wait_for_connections(1, WAIT).await?[0];
    drop(ws5);
    let info = fake.wait_for_connection_closed(c5, WAIT).await?;
    assert_eq!(info.close_kind, Some(CloseKind::ClientEof));

    // server close frame and reset
    let (mut ws6, _) = connect(&fake).await?;
    let c6 = fake.wait_for_connections(1, WAIT).await?[0];
    fake.send_ping(c6)?;
    fake.close_connection(c6)?;
    let mut saw_close = false;
    while let Ok(Some(msg)) = tokio::time::timeout(WAIT, ws6.next()).await {
        match msg {
            Ok(Message::Close(_)) => saw_close = true,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(saw_close);
    let info = fake.wait_for_connection_closed(c6, WAIT).await?;
    assert_eq!(info.close_kind, Some(CloseKind::ServerClosed));
    assert_eq!(info.pongs_received, 1);
    let (mut ws7, _) = connect(&fake).await?;
    let c7 = fake.wait_for_connections(1, WAIT).await?[0];
    fake.reset_connection(c7)?;
    loop {
        match tokio::time::timeout(WAIT, ws7.next()).await? {
            Some(Ok(Message::Close(_))) => panic!("got a close frame"),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        }
    }
    Ok(())
}

#[tokio::test]
async fn trigger_ids_from_sent_envelopes_expire_and_are_single_use() -> anyhow::Result<()> {
    let fake = FakeSlack::start().await;
    fake.set_trigger_ttl(Duration::from_millis(200));
    let (mut ws, _) = connect(&fake).await?;
    let client = slack_client(&fake);
    let token = SlackApiToken::new("xoxb-1-test".into());
    let s = client.open_session(&token);

    let env = payloads::block_actions("T1", "U1", "open_followup", "rec-1", None);
    let trigger = env["payload"]["trigger_id"].as_str().unwrap().to_string();
    fake.send_envelope(env)?;
    next_json(&mut ws).await?;
    s.views_open(&SlackApiViewsOpenRequest::new(
        trigger.clone().into(),
        test_view("a"),
    ))
    .await?;
    match s
        .views_open(&SlackApiViewsOpenRequest::new(
            trigger.into(),
            test_view("a"),
        ))
        .await
    {
        Err(SlackClientError::ApiError(e)) => assert_eq!(e.code, "exchanged_trigger_id"),
        other => panic!("unexpected {other:?}"),
    }

    let env = payloads::slash_command("T1", "U1", "/followup", "", &fake.response_url("r"));
    let trigger = env["payload"]["trigger_id"].as_str().unwrap().to_string();
    fake.send_envelope(env)?;
    next_json(&mut ws).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    match s
        .views_open(&SlackApiViewsOpenRequest::new(
            trigger.into(),
            test_view("a"),
        ))
        .await
    {
        Err(SlackClientError::ApiError(e)) => assert_eq!(e.code, "expired_trigger_id"),
        other => panic!("unexpected {other:?}"),
    }

    // a submission of the view the fake returned keeps its id / callback / metadata
    let opened = fake.calls("views.open")[0].response["view"].clone();
    let env = payloads::view_submission_for(
        "T1",
        "U1",
        &opened,
        payloads::state(&[("subject_block", "subject", payloads::text_input("Hi"))]),
    );
    match serde_json::from_value::<SlackInteractionEvent>(env["payload"].clone())? {
        SlackInteractionEvent::ViewSubmission(ev) => {
            assert_eq!(json!(ev.view.state_params.id.0), opened["id"]);
            match ev.view.view {
                SlackView::Modal(m) => {
                    assert_eq!(m.callback_id.unwrap().0, "a");
                    assert_eq!(m.blocks.len(), 2);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        other => panic!("unexpected {other:?}"),
    }
    Ok(())
}

/// Another workspace installs the app: `oauth.v2.access` (HTTP Basic or form credentials)
/// gives its own bot token, which `auth.test` names; a used code, a wrong secret and a
/// revoked token are refused as Slack refuses them; rotation refreshes.
#[tokio::test]
async fn a_second_workspace_installs_with_oauth_v2_and_gets_its_own_token() -> anyhow::Result<()> {
    let fake = FakeSlack::start().await;
    fake.set_oauth_client("111.222", "slack-client-secret");
    let install = fake_slack::Install {
        team_id: "T0OTHER".into(),
        team_name: "Other Co".into(),
        installer: "U0OWNER".into(),
        enterprise_id: None,
        redirect_uri: "https://bot.example/slack/oauth_redirect".into(),
        rotation: true,
    };
    let code = fake.issue_install_code(install.clone());
    let http = reqwest::Client::new();
    let exchange = |code: String, secret: &'static str| {
        http.post(format!("{}/oauth.v2.access", fake.api_url()))
            .basic_auth("111.222", Some(secret))
            .form(&[
                ("code", code.as_str()),
                ("redirect_uri", "https://bot.example/slack/oauth_redirect"),
            ])
            .send()
    };
    let wrong: Value = exchange(code.clone(), "nope").await?.json().await?;
    assert_eq!(wrong["error"], "invalid_client_id");
    let answer: Value = exchange(code.clone(), "slack-client-secret")
        .await?
        .json()
        .await?;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["team"]["id"], "T0OTHER");
    assert_eq!(answer["authed_user"]["id"], "U0OWNER");
    let token = answer["access_token"].as_str().unwrap().to_owned();
    assert_eq!(fake.team_of_token(&token).as_deref(), Some("T0OTHER"));
    let again: Value = exchange(code, "slack-client-secret").await?.json().await?;
    assert_eq!(again["error"], "invalid_code");

    let who: Value = http
        .post(format!("{}/auth.test", fake.api_url()))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(who["team_id"], "T0OTHER");
    assert_eq!(fake.tokens_used("auth.test"), vec![token.clone()]);

    let refreshed: Value = http
        .post(format!("{}/oauth.v2.access", fake.api_url()))
        .form(&[
            ("client_id", "111.222"),
            ("client_secret", "slack-client-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", answer["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(refreshed["ok"], true, "{refreshed}");
    assert_ne!(refreshed["access_token"], json!(token));
    assert_eq!(fake.oauth_exchanges("refresh_token"), 1);

    fake.revoke_token(&token);
    let revoked: Value = http
        .post(format!("{}/chat.postMessage", fake.api_url()))
        .bearer_auth(&token)
        .json(&json!({"channel": "C1", "text": "hi"}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(revoked["error"], "token_revoked");
    Ok(())
}

#[tokio::test]
async fn web_api_answers_carry_the_tokens_scopes() {
    let slack = FakeSlack::start().await;
    let http = reqwest::Client::new();
    let scopes = |token: &'static str, method: &'static str| {
        let url = format!("{}/{method}", slack.api_url());
        let http = http.clone();
        async move {
            let r = http.post(url).bearer_auth(token).send().await.unwrap();
            r.headers()
                .get("x-oauth-scopes")
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    let manifest = followup_bot::slack::manifest::bot_scopes().join(",");
    assert_eq!(scopes("xoxb-1-2-abc", "auth.test").await, Some(manifest));
    assert_eq!(
        scopes("xapp-1-A1-1-abc", "apps.connections.open")
            .await
            .as_deref(),
        Some("connections:write")
    );
    assert_eq!(
        scopes("xoxp-wrong-kind", "auth.test").await,
        None,
        "refused: no scopes"
    );
    slack.set_bot_scopes(&["chat:write"]);
    assert_eq!(
        scopes("xoxb-1-2-abc", "auth.test").await.as_deref(),
        Some("chat:write")
    );
    slack.omit_scopes_header();
    assert_eq!(scopes("xoxb-1-2-abc", "auth.test").await, None);
}
