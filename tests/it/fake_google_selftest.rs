//! Checks the Google fake itself with a plain reqwest client (redirects not followed).

use crate::support::fake_google;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use fake_google::{
    DEFAULT_ACCOUNT, FakeGoogle, MEET_LINK, SCOPE_CALENDAR_EVENTS, SCOPE_GMAIL_COMPOSE,
    SCOPE_USERINFO_EMAIL, code_challenge_for, id_token_claims, sub_for,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const CID: &str = "123-fake.apps.googleusercontent.com";
const SECRET: &str = "GOCSPX-fake_secret";
const REDIRECT: &str = "http://127.0.0.1:9/oauth/google/callback";
const SCOPES: &str = "openid email https://www.googleapis.com/auth/gmail.compose \
                      https://www.googleapis.com/auth/calendar.events";
const VERIFIER: &str = "a-verifier-of-at-least-43-characters-0123456789abcdef";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The authorize query the bot sends.
fn auth_params(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", CID.into()),
        ("redirect_uri", REDIRECT.into()),
        ("response_type", "code".into()),
        ("scope", SCOPES.into()),
        ("access_type", "offline".into()),
        ("prompt", "consent".into()),
        ("include_granted_scopes", "true".into()),
        ("state", "st-1".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

fn with(
    mut params: Vec<(&'static str, String)>,
    key: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    params.retain(|(k, _)| *k != key);
    params.push((key, value.into()));
    params
}

fn without(mut params: Vec<(&'static str, String)>, key: &str) -> Vec<(&'static str, String)> {
    params.retain(|(k, _)| *k != key);
    params
}

async fn authorize(g: &FakeGoogle, params: &[(&str, String)]) -> reqwest::Response {
    client()
        .get(g.auth_url())
        .query(params)
        .send()
        .await
        .expect("authorize")
}

/// Query pairs of a redirect `Location`.
fn location_query(resp: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(resp.status(), 302, "authorize redirects");
    let loc = resp.headers()["location"].to_str().unwrap();
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// A fresh code for the standard params (verifier [`VERIFIER`]).
async fn code(g: &FakeGoogle) -> String {
    let resp = authorize(g, &auth_params(&code_challenge_for(VERIFIER))).await;
    location_query(&resp)["code"].clone()
}

async fn post_form(url: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value) {
    let mut req = client().post(url).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.expect("post");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

async fn exchange(g: &FakeGoogle, code: &str, verifier: &str) -> (u16, Value) {
    post_form(
        &g.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", REDIRECT),
        ],
        Some((CID, SECRET)),
    )
    .await
}

async fn refresh(g: &FakeGoogle, refresh_token: &str) -> (u16, Value) {
    post_form(
        &g.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CID),
            ("client_secret", SECRET),
        ],
        None,
    )
    .await
}

/// Consent and exchange: the token answer.
async fn connect(g: &FakeGoogle) -> Value {
    let code = code(g).await;
    let (status, body) = exchange(g, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn bearer_get(url: &str, token: &str) -> (u16, Value) {
    let resp = client()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

async fn bearer_post(url: &str, token: &str, body: &Value) -> (u16, Value) {
    let resp = client()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

fn access(tokens: &Value) -> String {
    tokens["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

fn unauthenticated() -> Value {
    json!({"error": {
        "code": 401,
        "message": "Request had invalid authentication credentials.",
        "status": "UNAUTHENTICATED",
    }})
}

// ------------------------------------------------------------------------------ OAuth

#[tokio::test]
async fn google_consent_exchange_and_userinfo() {
    let g = FakeGoogle::start(CID, SECRET).await;
    assert!(g.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(g.auth_url(), format!("{}/o/oauth2/v2/auth", g.base_url()));
    assert_eq!(g.token_url(), format!("{}/token", g.base_url()));
    assert_eq!(g.userinfo_url(), format!("{}/v1/userinfo", g.base_url()));
    assert_eq!(g.revoke_url(), format!("{}/revoke", g.base_url()));
    assert_eq!(g.gmail_api_url(), g.base_url());
    assert_eq!(
        g.calendar_api_url(),
        format!("{}/calendar/v3", g.base_url())
    );
    assert_eq!(g.account(), DEFAULT_ACCOUNT);
    assert_eq!(
        (g.client_id(), g.client_secret()),
        (CID.into(), SECRET.into())
    );

    let params = with(
        auth_params(&code_challenge_for(VERIFIER)),
        "login_hint",
        "hint@x.example",
    );
    let resp = authorize(&g, &params).await;
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.starts_with(&format!("{REDIRECT}?state=st-1&code=4%2F0A")),
        "{loc}"
    );
    let q = location_query(&resp);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["authuser"], "0");
    assert_eq!(q["prompt"], "consent");
    let granted =
        format!("openid {SCOPE_USERINFO_EMAIL} {SCOPE_GMAIL_COMPOSE} {SCOPE_CALENDAR_EVENTS}");
    assert_eq!(q["scope"], granted, "email comes back in its long form");
    let code = q["code"].clone();
    assert!(code.starts_with("4/0A"));

    let calls = g.authorize_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["login_hint"], "hint@x.example");
    assert_eq!(calls[0]["code_challenge_method"], "S256");
    assert_eq!(calls[0]["scope"], SCOPES);

    // Exchange with Basic auth.
    let (status, tokens) = exchange(&g, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(tokens["scope"], granted);
    assert!(access(&tokens).starts_with("ya29."));
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("1//"));
    let id_token = tokens["id_token"].as_str().unwrap();
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "kid": "fake", "typ": "JWT"}));
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap(), b"signature");
    let claims = id_token_claims(id_token).unwrap();
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert_eq!(claims["aud"], CID);
    assert_eq!(claims["azp"], CID);
    assert_eq!(claims["email"], DEFAULT_ACCOUNT);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["sub"], sub_for(DEFAULT_ACCOUNT));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(sub_for(DEFAULT_ACCOUNT).len(), 21);
    assert_ne!(sub_for(DEFAULT_ACCOUNT), sub_for("other@gmail.example"));

    let tc = g.token_calls();
    assert_eq!(tc.len(), 1);
    assert_eq!(tc[0].grant_type, "authorization_code");
    assert!(tc[0].basic_auth);
    assert_eq!(tc[0].client_id.as_deref(), Some(CID));
    assert_eq!(tc[0].form["code_verifier"], VERIFIER);
    assert_eq!(tc[0].form["redirect_uri"], REDIRECT);
    assert!(!tc[0].form.contains_key("client_secret"));
    assert_eq!(tc[0].status, 200);

    // Userinfo.
    let (status, info) = bearer_get(&g.userinfo_url(), &access(&tokens)).await;
    assert_eq!(status, 200);
    assert_eq!(
        info,
        json!({"sub": sub_for(DEFAULT_ACCOUNT), "email": DEFAULT_ACCOUNT, "email_verified": true})
    );
    let (status, info) = bearer_get(&g.userinfo_url(), "ya29.nope").await;
    assert_eq!(status, 401);
    assert_eq!(
        info,
        json!({"error": "invalid_token", "error_description": "Invalid Credentials"})
    );

    // A code works once.
    let (status, body) = exchange(&g, &code, VERIFIER).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Bad Request"})
    );

    // Form credentials work too; set_account picks who logs in.
    g.set_account("rita@gmail.example");
    let code = self::code(&g).await;
    let (status, tokens) = post_form(
        &g.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("client_id", CID),
            ("client_secret", SECRET),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        id_token_claims(tokens["id_token"].as_str().unwrap()).unwrap()["email"],
        "rita@gmail.example"
    );
    let tc = g.token_calls();
    assert!(!tc[2].basic_auth);
    assert_eq!(tc[2].client_id.as_deref(), Some(CID));
    assert!(!tc[2].form.contains_key("client_secret"));

    // The consent helper plays the browser.
    let url = reqwest::Url::parse_with_params(&g.auth_url(), auth_params("chal")).unwrap();
    let loc = g.consent(url.as_str()).await.unwrap();
    assert!(loc.starts_with(REDIRECT) && loc.contains("code="), "{loc}");
    let err = g
        .consent(&format!("{}?client_id=nope", g.auth_url()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
}

#[tokio::test]
async fn google_authorize_validation_and_denial() {
    let g = FakeGoogle::start(CID, SECRET).await;
    let good = auth_params("chal");
    let cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (with(good.clone(), "client_id", "other"), "invalid_client"),
        (without(good.clone(), "client_id"), "invalid_client"),
        (without(good.clone(), "redirect_uri"), "redirect_uri"),
        (
            with(good.clone(), "redirect_uri", "not a url"),
            "redirect_uri",
        ),
        (
            with(good.clone(), "response_type", "token"),
            "response_type",
        ),
        (
            with(good.clone(), "code_challenge_method", "plain"),
            "code_challenge_method",
        ),
        (
            without(good.clone(), "code_challenge_method"),
            "code_challenge_method",
        ),
        (with(good.clone(), "code_challenge", ""), "code_challenge"),
        (
            with(
                good.clone(),
                "scope",
                "openid email https://www.googleapis.com/auth/gmail.compose",
            ),
            "calendar.events",
        ),
        (
            with(
                good.clone(),
                "scope",
                &format!("{SCOPES} profile").replace("email ", ""),
            ),
            "email",
        ),
    ];
    for (params, needle) in &cases {
        let resp = authorize(&g, params).await;
        assert_eq!(resp.status(), 400, "{params:?}");
        assert!(resp.headers().get("location").is_none());
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let text = resp.text().await.unwrap();
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
    assert_eq!(g.authorize_calls().len(), cases.len());
    assert!(g.calls().iter().all(|c| c.status == 400));

    // Denial keeps state, carries no code; it is used up by one valid request.
    g.deny_next();
    let resp = authorize(&g, &good).await;
    let loc = resp.headers()["location"].to_str().unwrap();
    assert_eq!(loc, format!("{REDIRECT}?error=access_denied&state=st-1"));
    let q = location_query(&authorize(&g, &good).await);
    assert!(q.contains_key("code"));

    // A redirect_uri with a query keeps it; no state sent → none back.
    let params = without(
        with(good.clone(), "redirect_uri", "http://127.0.0.1:9/cb?x=1"),
        "state",
    );
    let resp = authorize(&g, &params).await;
    let loc = resp.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with("http://127.0.0.1:9/cb?x=1&code="), "{loc}");
    assert!(!location_query(&resp).contains_key("state"));

    // Unticked scopes are not granted; include_granted_scopes adds live grants' scopes.
    g.set_account("new@gmail.example");
    g.uncheck_scopes_next(&[SCOPE_CALENDAR_EVENTS]);
    let q = location_query(&authorize(&g, &auth_params(&code_challenge_for(VERIFIER))).await);
    assert_eq!(
        q["scope"],
        format!("openid {SCOPE_USERINFO_EMAIL} {SCOPE_GMAIL_COMPOSE}")
    );
    let (status, tokens) = exchange(&g, &q["code"], VERIFIER).await;
    assert_eq!(status, 200);
    assert!(!tokens["scope"].as_str().unwrap().contains("calendar"));
    let (status, _) = bearer_post(
        &format!("{}/calendars/primary/events", g.calendar_api_url()),
        &access(&tokens),
        &event_body(None),
    )
    .await;
    assert_eq!(status, 403, "no calendar scope");
    // Asking again with a narrower scope set but include_granted_scopes=true: union.
    g.uncheck_scopes_next(&["email"]);
    let q = location_query(&authorize(&g, &auth_params("c")).await);
    assert_eq!(
        q["scope"],
        format!("openid {SCOPE_GMAIL_COMPOSE} {SCOPE_CALENDAR_EVENTS} {SCOPE_USERINFO_EMAIL}")
    );
    g.uncheck_scopes_next(&["email"]);
    let params = with(auth_params("c"), "include_granted_scopes", "false");
    let q = location_query(&authorize(&g, &params).await);
    assert_eq!(
        q["scope"],
        format!("openid {SCOPE_GMAIL_COMPOSE} {SCOPE_CALENDAR_EVENTS}")
    );

    // Wrong method.
    let resp = client().post(g.auth_url()).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn google_token_errors() {
    let g = FakeGoogle::start(CID, SECRET).await;
    let invalid_grant = json!({"error": "invalid_grant", "error_description": "Bad Request"});

    // Client authentication.
    let c = code(&g).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", c.as_str()),
        ("code_verifier", VERIFIER),
        ("redirect_uri", REDIRECT),
    ];
    let (status, body) = post_form(&g.token_url(), &form, Some(("other-client", SECRET))).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": "invalid_client", "error_description": "The OAuth client was not found."})
    );
    let (status, body) = post_form(&g.token_url(), &form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = post_form(&g.token_url(), &form, Some((CID, "wrong"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // A failed client check leaves the code usable.
    let (status, _) = exchange(&g, &c, VERIFIER).await;
    assert_eq!(status, 200);

    // Wrong verifier, then the code is gone.
    let c = code(&g).await;
    assert_eq!(
        exchange(&g, &c, "another-verifier").await,
        (400, invalid_grant.clone())
    );
    assert_eq!(
        exchange(&g, &c, VERIFIER).await,
        (400, invalid_grant.clone())
    );

    // Missing verifier.
    let c = code(&g).await;
    let (status, body) = post_form(
        &g.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", REDIRECT),
        ],
        Some((CID, SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // redirect_uri mismatch.
    let c = code(&g).await;
    let (status, body) = post_form(
        &g.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("code_verifier", VERIFIER),
            ("redirect_uri", "http://127.0.0.1:9/other"),
        ],
        Some((CID, SECRET)),
    )
    .await;
    assert_eq!((status, body), (400, invalid_grant.clone()));

    // Unknown code, missing code, odd grant types.
    assert_eq!(
        exchange(&g, "4/0Anope", VERIFIER).await,
        (400, invalid_grant.clone())
    );
    let (status, body) = post_form(
        &g.token_url(),
        &[("grant_type", "authorization_code")],
        Some((CID, SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = post_form(
        &g.token_url(),
        &[("grant_type", "password")],
        Some((CID, SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = post_form(&g.token_url(), &[], Some((CID, SECRET))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // A canned answer for the next call, whatever it is; the code survives it.
    let c = code(&g).await;
    g.fail_token_next(503, json!({"error": "backend_error"}));
    assert_eq!(
        exchange(&g, &c, VERIFIER).await,
        (503, json!({"error": "backend_error"}))
    );
    let (status, tokens) = exchange(&g, &c, VERIFIER).await;
    assert_eq!(status, 200);
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    g.fail_token_next(500, json!({"error": "internal_failure"}));
    assert_eq!(refresh(&g, &rt).await.0, 500);
    assert_eq!(refresh(&g, &rt).await.0, 200);
    assert_eq!(g.refresh_count(), 2);

    // omit_refresh_token_next: only the next successful exchange.
    g.omit_refresh_token_next();
    let c = code(&g).await;
    assert_eq!(exchange(&g, &c, "bad").await.0, 400);
    let tokens = connect(&g).await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert!(tokens.get("access_token").is_some());
    assert!(connect(&g).await.get("refresh_token").is_some());

    // Without access_type=offline there is no refresh token (as Google).
    let params = without(auth_params(&code_challenge_for(VERIFIER)), "access_type");
    let q = location_query(&authorize(&g, &params).await);
    let (status, tokens) = exchange(&g, &q["code"], VERIFIER).await;
    assert_eq!(status, 200);
    assert!(tokens.get("refresh_token").is_none());

    // Wrong method.
    let resp = client().get(g.token_url()).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert!(
        g.token_calls()
            .iter()
            .all(|c| !c.form.contains_key("client_secret"))
    );
}

#[tokio::test]
async fn google_refresh_expiry_and_revoke_grant() {
    let g = FakeGoogle::start(CID, SECRET).await;
    g.set_access_ttl(1);
    let tokens = connect(&g).await;
    assert_eq!(tokens["expires_in"], 1);
    let first = access(&tokens);
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(bearer_get(&g.userinfo_url(), &first).await.0, 200);

    // Refresh: a new access token, no refresh_token, an id_token, the same scope.
    g.set_access_ttl(3599);
    let (status, body) = refresh(&g, &rt).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["scope"], tokens["scope"]);
    assert!(id_token_claims(body["id_token"].as_str().unwrap()).is_some());
    let second = access(&body);
    assert_ne!(first, second);
    assert_eq!(g.refresh_count(), 1);
    let tc = g.token_calls();
    assert_eq!(tc[1].grant_type, "refresh_token");
    assert_eq!(tc[1].form["refresh_token"], rt);

    // The 1 s token expires by the clock; the refreshed one lives on.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(bearer_get(&g.userinfo_url(), &first).await.0, 401);
    assert_eq!(bearer_get(&g.userinfo_url(), &second).await.0, 200);
    let drafts_url = format!("{}/gmail/v1/users/me/drafts", g.gmail_api_url());
    assert_eq!(
        bearer_get(&drafts_url, &first).await,
        (401, unauthenticated())
    );

    // ttl 0: born expired.
    g.set_access_ttl(0);
    let (_, body) = refresh(&g, &rt).await;
    assert_eq!(body["expires_in"], 0);
    assert_eq!(bearer_get(&g.userinfo_url(), &access(&body)).await.0, 401);
    g.set_access_ttl(3599);

    // expire_access_tokens: every token issued so far.
    g.expire_access_tokens();
    assert_eq!(bearer_get(&g.userinfo_url(), &second).await.0, 401);
    let (_, body) = refresh(&g, &rt).await;
    let third = access(&body);
    assert_eq!(bearer_get(&g.userinfo_url(), &third).await.0, 200);

    // Unknown refresh token; revoke_grant from the test side.
    let expired = json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."});
    assert_eq!(refresh(&g, "1//0nope").await, (400, expired.clone()));
    let (status, body) = post_form(
        &g.token_url(),
        &[("grant_type", "refresh_token")],
        Some((CID, SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let other = g.issue_tokens("other@gmail.example");
    g.revoke_grant(DEFAULT_ACCOUNT);
    assert_eq!(refresh(&g, &rt).await, (400, expired));
    assert_eq!(bearer_get(&g.userinfo_url(), &third).await.0, 401);
    assert_eq!(
        bearer_get(&g.userinfo_url(), &other.access_token).await.0,
        200,
        "others untouched"
    );
    assert_eq!(refresh(&g, &other.refresh_token).await.0, 200);
    assert_eq!(g.refresh_count(), 7);

    // A new consent after revocation works again.
    let tokens = connect(&g).await;
    assert_eq!(bearer_get(&g.userinfo_url(), &access(&tokens)).await.0, 200);
}

#[tokio::test]
async fn google_token_delay_and_concurrent_refreshes() {
    let g = FakeGoogle::start(CID, SECRET).await;
    let issued = g.issue_tokens(DEFAULT_ACCOUNT);
    assert_eq!(issued.expires_in, 3599);
    assert_eq!(
        issued.scope,
        format!("openid {SCOPE_USERINFO_EMAIL} {SCOPE_GMAIL_COMPOSE} {SCOPE_CALENDAR_EVENTS}")
    );
    assert_eq!(
        bearer_get(&g.userinfo_url(), &issued.access_token).await.0,
        200
    );

    g.set_token_delay(Duration::from_millis(300));
    let started = Instant::now();
    let waiter = {
        let g = g.clone();
        tokio::spawn(async move { g.wait_for_token_calls(2, WAIT).await })
    };
    let (a, b) = tokio::join!(
        refresh(&g, &issued.refresh_token),
        refresh(&g, &issued.refresh_token)
    );
    let took = started.elapsed();
    assert_eq!((a.0, b.0), (200, 200));
    assert_ne!(access(&a.1), access(&b.1));
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(
        took < Duration::from_millis(550),
        "concurrent, not serial: {took:?}"
    );
    let calls = waiter.await.unwrap().unwrap();
    assert!(calls.iter().all(|c| c.grant_type == "refresh_token"));
    assert_eq!(g.refresh_count(), 2);

    g.set_token_delay(Duration::ZERO);
    let started = Instant::now();
    assert_eq!(refresh(&g, &issued.refresh_token).await.0, 200);
    assert!(started.elapsed() < Duration::from_millis(250));
    let err = g
        .wait_for_token_calls(10, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn google_revoke_endpoint() {
    let g = FakeGoogle::start(CID, SECRET).await;
    let bad = json!({"error": "invalid_token", "error_description": "Token expired or revoked"});

    // By refresh token in the query string: the access token goes too.
    let t = g.issue_tokens(DEFAULT_ACCOUNT);
    let resp = client()
        .post(g.revoke_url())
        .query(&[("token", &t.refresh_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({}));
    assert_eq!(bearer_get(&g.userinfo_url(), &t.access_token).await.0, 401);
    assert_eq!(refresh(&g, &t.refresh_token).await.0, 400);
    // Again: already revoked.
    assert_eq!(
        post_form(&g.revoke_url(), &[("token", &t.refresh_token)], None).await,
        (400, bad.clone())
    );

    // By access token in a form body: the refresh token goes too.
    let t = g.issue_tokens(DEFAULT_ACCOUNT);
    assert_eq!(
        post_form(&g.revoke_url(), &[("token", &t.access_token)], None).await,
        (200, json!({}))
    );
    assert_eq!(refresh(&g, &t.refresh_token).await.0, 400);

    // The whole grant of the account: an earlier grant of the same account goes too.
    let older = connect(&g).await;
    let newer = connect(&g).await;
    let rt = newer["refresh_token"].as_str().unwrap();
    assert_eq!(
        post_form(&g.revoke_url(), &[("token", rt)], None).await.0,
        200
    );
    assert_eq!(
        refresh(&g, older["refresh_token"].as_str().unwrap())
            .await
            .0,
        400
    );
    assert_eq!(bearer_get(&g.userinfo_url(), &access(&older)).await.0, 401);

    // Unknown, missing.
    assert_eq!(
        post_form(&g.revoke_url(), &[("token", "nope")], None).await,
        (400, bad)
    );
    let (status, body) = post_form(&g.revoke_url(), &[], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let resp = client().get(g.revoke_url()).send().await.unwrap();
    assert_eq!(resp.status(), 405);

    let listed = g.revoked_tokens();
    assert_eq!(listed.len(), 5);
    assert_eq!(listed[0], listed[1]);
    assert_eq!(listed[3], rt);
    assert_eq!(listed[4], "nope");
}

// ------------------------------------------------------------------------------ Gmail

fn message(message_id: &str, subject: &str) -> String {
    format!(
        "From: Sam <sam@seller.example>\r\nTo: Chris <chris@customer.example>\r\n\
         Subject: {subject}\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nHi Chris,\r\nthanks for the call. ✓\r\n"
    )
}

fn drafts_url(g: &FakeGoogle) -> String {
    format!("{}/gmail/v1/users/me/drafts", g.gmail_api_url())
}

#[tokio::test]
async fn google_gmail_drafts() {
    let g = FakeGoogle::start(CID, SECRET).await;
    let sam = g.issue_tokens(DEFAULT_ACCOUNT).access_token;
    let url = drafts_url(&g);

    // Three encodings of raw.
    let m1 = message("one@followup.example", "One");
    let m2 = message("two@followup.example", "Two ??>>");
    let m3 = message("three@followup.example", "Three");
    let encodings = [
        URL_SAFE_NO_PAD.encode(&m1),
        URL_SAFE.encode(&m2),
        STANDARD.encode(&m3),
    ];
    let mut answers = Vec::new();
    for raw in &encodings {
        let (status, body) = bearer_post(&url, &sam, &json!({"message": {"raw": raw}})).await;
        assert_eq!(status, 200, "{body}");
        answers.push(body);
    }
    let d = g.drafts();
    assert_eq!(d.len(), 3);
    for (i, (m, a)) in [&m1, &m2, &m3].iter().zip(&answers).enumerate() {
        assert_eq!(d[i].raw, m.as_bytes());
        assert_eq!(d[i].raw_text(), **m);
        assert_eq!(d[i].owner, DEFAULT_ACCOUNT);
        assert_eq!(a["id"], d[i].id);
        assert!(d[i].id.starts_with('r') && d[i].id[1..].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(a["message"]["id"], d[i].message_id);
        assert!(d[i].message_id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a["message"]["threadId"], d[i].message_id);
        assert_eq!(a["message"]["labelIds"], json!(["DRAFT"]));
    }
    assert_eq!(
        d[0].rfc822_message_id.as_deref(),
        Some("one@followup.example")
    );
    assert_eq!(
        d[1].rfc822_message_id.as_deref(),
        Some("two@followup.example")
    );
    assert_ne!(d[0].id, d[1].id);
    assert_ne!(d[0].message_id, d[1].message_id);

    // threadId given → kept; no Message-ID → None.
    let raw = URL_SAFE_NO_PAD.encode("Subject: bare\r\n\r\nbody\r\n");
    let (status, body) = bearer_post(
        &url,
        &sam,
        &json!({"message": {"raw": raw, "threadId": "18abc"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["message"]["threadId"], "18abc");
    assert_eq!(g.drafts()[3].rfc822_message_id, None);

    // Another account's drafts are its own.
    let rita = g.issue_tokens("rita@gmail.example").access_token;
    let raw = URL_SAFE_NO_PAD.encode(message("rita@followup.example", "Rita"));
    assert_eq!(
        bearer_post(&url, &rita, &json!({"message": {"raw": raw}}))
            .await
            .0,
        200
    );

    // List: all (newest first), by rfc822msgid with and without brackets, no match.
    let (status, all) = bearer_get(&url, &sam).await;
    assert_eq!(status, 200);
    assert_eq!(all["resultSizeEstimate"], 4);
    let ids: Vec<&str> = all["drafts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    let ds = g.drafts();
    let newest_first: Vec<&str> = [&ds[3], &ds[2], &ds[1], &ds[0]]
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(ids, newest_first);
    let list = |q: &'static str| {
        let url = url.clone();
        let sam = sam.clone();
        async move {
            let resp = client()
                .get(&url)
                .query(&[("q", q)])
                .bearer_auth(&sam)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    let one = list("rfc822msgid:two@followup.example").await;
    assert_eq!(
        one,
        json!({
            "drafts": [{"id": d[1].id, "message": {"id": d[1].message_id, "threadId": d[1].message_id}}],
            "resultSizeEstimate": 1,
        })
    );
    assert_eq!(list("rfc822msgid:<two@followup.example>").await, one);
    assert_eq!(
        list("rfc822msgid:nope@followup.example").await,
        json!({"resultSizeEstimate": 0})
    );
    assert_eq!(
        list("rfc822msgid:rita@followup.example").await,
        json!({"resultSizeEstimate": 0})
    );
    assert_eq!(list("in:drafts subject:One").await["resultSizeEstimate"], 4);
    let fresh = g.issue_tokens("empty@gmail.example").access_token;
    assert_eq!(
        bearer_get(&url, &fresh).await,
        (200, json!({"resultSizeEstimate": 0}))
    );

    // Bad raw.
    let invalid = json!({"error": {"code": 400, "message": "Invalid value for ByteString", "status": "INVALID_ARGUMENT"}});
    for body in [
        json!({"message": {"raw": "***"}}),
        json!({"message": {"raw": ""}}),
        json!({"message": {}}),
        json!({}),
    ] {
        assert_eq!(
            bearer_post(&url, &sam, &body).await,
            (400, invalid.clone()),
            "{body}"
        );
    }
    let resp = client()
        .post(&url)
        .bearer_auth(&sam)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(g.drafts().len(), 5);

    // Auth: none, unknown, revoked; wrong method.
    let ok = json!({"message": {"raw": URL_SAFE_NO_PAD.encode(&m1)}});
    let resp = client().post(&url).json(&ok).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap(), unauthenticated());
    assert_eq!(
        bearer_post(&url, "ya29.nope", &ok).await,
        (401, unauthenticated())
    );
    g.revoke_grant("rita@gmail.example");
    assert_eq!(
        bearer_post(&url, &rita, &ok).await,
        (401, unauthenticated())
    );
    assert_eq!(bearer_get(&url, &rita).await, (401, unauthenticated()));
    let resp = client()
        .delete(&url)
        .bearer_auth(&sam)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(g.drafts().len(), 5);
}

#[tokio::test]
async fn google_gmail_failures_and_delay() {
    let g = FakeGoogle::start(CID, SECRET).await;
    let sam = g.issue_tokens(DEFAULT_ACCOUNT).access_token;
    let url = drafts_url(&g);
    let ok = json!({"message": {"raw": URL_SAFE_NO_PAD.encode(message("m@x.example", "Hi"))}});

    // A queued failure: not consumed by a 401, stores nothing.
    let quota =
        json!({"error": {"code": 429, "message": "Too many", "status": "RESOURCE_EXHAUSTED"}});
    g.fail_gmail_next(429, quota.clone());
    assert_eq!(bearer_post(&url, "ya29.nope", &ok).await.0, 401);
    assert_eq!(bearer_post(&url, &sam, &ok).await, (429, quota));
    assert!(g.drafts().is_empty());
    // It applies to create only: the list still answers.
    g.fail_gmail_next(500, json!({}));
    assert_eq!(bearer_get(&url, &sam).await.0, 200);
    assert_eq!(bearer_post(&url, &sam, &ok).await.0, 500);
    assert_eq!(bearer_post(&url, &sam, &ok).await.0, 200);

    // A token without a Gmail scope → 403 (a new account: include_granted_scopes would add
    // back the scopes of an earlier grant).
    g.set_account("nogmail@gmail.example");
    g.uncheck_scopes_next(&[SCOPE_GMAIL_COMPOSE]);
    let tokens = connect(&g).await;
    let (status, body) = bearer_post(&url, &access(&tokens), &ok).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");

    // Delay: the draft exists before the answer arrives.
    g.set_gmail_delay(Duration::from_millis(400));
    let started = Instant::now();
    let pending = {
        let (url, sam, ok) = (url.clone(), sam.clone(), ok.clone());
        tokio::spawn(async move { bearer_post(&url, &sam, &ok).await })
    };
    let drafts = g.wait_for_drafts(2, WAIT).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(350),
        "stored before the delay"
    );
    assert_eq!(drafts.len(), 2);
    assert!(!pending.is_finished());
    assert_eq!(pending.await.unwrap().0, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let err = g
        .wait_for_drafts(3, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
}

// ------------------------------------------------------------------------------ Calendar

fn event_body(id: Option<&str>) -> Value {
    let mut body = json!({
        "summary": "Acme follow-up",
        "description": "Next steps",
        "start": {"dateTime": "2025-03-04T15:00:00+01:00", "timeZone": "Europe/Paris"},
        "end": {"dateTime": "2025-03-04T15:30:00+01:00", "timeZone": "Europe/Paris"},
        "attendees": [{"email": "chris@customer.example"}],
        "conferenceData": {"createRequest": {
            "requestId": "req-1",
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
        }},
    });
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    body
}

fn events_url(g: &FakeGoogle, query: &str) -> String {
    format!("{}/calendars/primary/events{query}", g.calendar_api_url())
}

#[tokio::test]
async fn google_calendar_events() {
    let g = FakeGoogle::start(CID, SECRET).await;
    let sam = g.issue_tokens(DEFAULT_ACCOUNT).access_token;
    let insert = events_url(&g, "?sendUpdates=all&conferenceDataVersion=1");

    // With an id and Meet.
    let (status, ev) = bearer_post(&insert, &sam, &event_body(Some("fu0123456789abcdefv"))).await;
    assert_eq!(status, 200, "{ev}");
    assert_eq!(ev["id"], "fu0123456789abcdefv");
    assert_eq!(ev["status"], "confirmed");
    assert_eq!(
        ev["htmlLink"],
        "https://www.google.com/calendar/event?eid=fu0123456789abcdefv"
    );
    assert_eq!(ev["summary"], "Acme follow-up");
    assert_eq!(ev["start"]["timeZone"], "Europe/Paris");
    assert_eq!(ev["attendees"][0]["email"], "chris@customer.example");
    assert_eq!(ev["attendees"][0]["responseStatus"], "needsAction");
    assert_eq!(ev["organizer"]["email"], DEFAULT_ACCOUNT);
    assert_eq!(ev["hangoutLink"], MEET_LINK);
    assert_eq!(
        ev["conferenceData"]["entryPoints"][0]["entryPointType"],
        "video"
    );
    assert_eq!(ev["conferenceData"]["entryPoints"][0]["uri"], MEET_LINK);
    assert_eq!(ev["conferenceData"]["createRequest"]["requestId"], "req-1");
    assert_eq!(
        ev["conferenceData"]["createRequest"]["status"]["statusCode"],
        "success"
    );

    let events = g.wait_for_events(1, WAIT).await.unwrap();
    assert_eq!(events[0].id, "fu0123456789abcdefv");
    assert_eq!(events[0].owner, DEFAULT_ACCOUNT);
    assert_eq!(events[0].query["sendUpdates"], "all");
    assert_eq!(events[0].query["conferenceDataVersion"], "1");
    assert_eq!(events[0].body, event_body(Some("fu0123456789abcdefv")));
    assert_eq!(events[0].resource, ev);

    // Get it back; unknown id; another account cannot see it.
    let get_url = events_url(&g, "/fu0123456789abcdefv");
    assert_eq!(bearer_get(&get_url, &sam).await, (200, ev.clone()));
    let (status, body) = bearer_get(&events_url(&g, "/nope0"), &sam).await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].as_str()),
        (404, Some("notFound"))
    );
    let rita = g.issue_tokens("rita@gmail.example").access_token;
    assert_eq!(bearer_get(&get_url, &rita).await.0, 404);

    // Same id again → 409 for sam; fine for rita.
    let dup = json!({"error": {
        "code": 409,
        "message": "The requested identifier already exists.",
        "errors": [{"domain": "global", "reason": "duplicate", "message": "The requested identifier already exists."}],
    }});
    assert_eq!(
        bearer_post(&insert, &sam, &event_body(Some("fu0123456789abcdefv"))).await,
        (409, dup)
    );
    assert_eq!(
        bearer_post(&insert, &rita, &event_body(Some("fu0123456789abcdefv")))
            .await
            .0,
        200
    );

    // conferenceDataVersion=0 (or absent): no Meet; generated id.
    for q in ["?sendUpdates=none&conferenceDataVersion=0", ""] {
        let (status, ev) = bearer_post(&events_url(&g, q), &sam, &event_body(None)).await;
        assert_eq!(status, 200, "{ev}");
        assert!(ev.get("hangoutLink").is_none());
        assert!(ev.get("conferenceData").is_none());
        let id = ev["id"].as_str().unwrap();
        assert!(
            id.len() >= 5
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b)),
            "{id}"
        );
        assert_eq!(
            ev["htmlLink"],
            format!("https://www.google.com/calendar/event?eid={id}")
        );
    }
    // No createRequest with version 1: no Meet either.
    let mut plain = event_body(None);
    plain.as_object_mut().unwrap().remove("conferenceData");
    let (_, ev) = bearer_post(&insert, &sam, &plain).await;
    assert!(ev.get("hangoutLink").is_none());
    // Local time with a timeZone is fine.
    let mut local = plain.clone();
    local["start"] = json!({"dateTime": "2025-03-04T15:00:00", "timeZone": "Europe/Paris"});
    assert_eq!(bearer_post(&insert, &sam, &local).await.0, 200);
    assert_eq!(g.events().len(), 6);

    // Bad ids.
    let invalid_id = |body: &Value| body["error"]["errors"][0]["reason"] == "invalidResourceId";
    for id in [
        json!("abcd"),
        json!("ABCDEF"),
        json!("abcdw1"),
        json!("abc-def"),
        json!("x".repeat(1025)),
        json!(12345),
    ] {
        let mut body = event_body(None);
        body["id"] = id.clone();
        let (status, resp) = bearer_post(&insert, &sam, &body).await;
        assert_eq!(status, 400, "{id}");
        assert!(invalid_id(&resp), "{resp}");
        assert_eq!(resp["error"]["message"], "Invalid resource id value.");
    }
    let long_ok = "a".repeat(1024);
    assert_eq!(
        bearer_post(&insert, &sam, &event_body(Some(&long_ok)))
            .await
            .0,
        200
    );

    // Bad times, bad conference type, bad body.
    let mut no_end = event_body(None);
    no_end.as_object_mut().unwrap().remove("end");
    let mut no_start_time = event_body(None);
    no_start_time["start"] = json!({"date": "2025-03-04"});
    let mut no_zone = event_body(None);
    no_zone["start"] = json!({"dateTime": "2025-03-04T15:00:00"});
    let mut garbage = event_body(None);
    garbage["end"]["dateTime"] = json!("tomorrow");
    let mut backwards = event_body(None);
    backwards["end"]["dateTime"] = json!("2025-03-04T14:00:00+01:00");
    let mut zoom = event_body(None);
    zoom["conferenceData"]["createRequest"]["conferenceSolutionKey"]["type"] = json!("zoom");
    for (body, reason) in [
        (no_end, "required"),
        (no_start_time, "required"),
        (no_zone, "required"),
        (garbage, "invalid"),
        (backwards, "timeRangeEmpty"),
        (zoom, "invalid"),
        (json!([1, 2]), "parseError"),
    ] {
        let (status, resp) = bearer_post(&insert, &sam, &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(resp["error"]["errors"][0]["reason"], reason, "{resp}");
        assert_eq!(resp["error"]["code"], 400);
    }
    assert_eq!(g.events().len(), 7);

    // Auth and methods.
    assert_eq!(
        bearer_post(&insert, "ya29.nope", &plain).await,
        (401, unauthenticated())
    );
    assert_eq!(
        bearer_get(&get_url, "ya29.nope").await,
        (401, unauthenticated())
    );
    let resp = client()
        .get(events_url(&g, ""))
        .bearer_auth(&sam)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let resp = client()
        .delete(&get_url)
        .bearer_auth(&sam)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(bearer_get(&events_url(&g, "/a/b"), &sam).await.0, 404);
    g.set_account("nocal@gmail.example");
    g.uncheck_scopes_next(&[SCOPE_CALENDAR_EVENTS]);
    let no_cal = access(&connect(&g).await);
    assert_eq!(bearer_post(&insert, &no_cal, &plain).await.0, 403);
    assert_eq!(bearer_get(&get_url, &no_cal).await.0, 403);
    assert_eq!(g.events().len(), 7);
}

#[tokio::test]
async fn google_calendar_failures_and_delay() {
    let g = FakeGoogle::start(CID, SECRET).await;
    let sam = g.issue_tokens(DEFAULT_ACCOUNT).access_token;
    let insert = events_url(&g, "?conferenceDataVersion=1");

    let limit = json!({"error": {"code": 403, "message": "Rate Limit Exceeded", "errors": [{"reason": "rateLimitExceeded"}]}});
    g.fail_calendar_next(403, limit.clone());
    assert_eq!(
        bearer_post(&insert, "ya29.nope", &event_body(None)).await.0,
        401
    );
    assert_eq!(
        bearer_post(&insert, &sam, &event_body(Some("abcde1"))).await,
        (403, limit)
    );
    assert!(g.events().is_empty());
    // The id was not taken by the failed call.
    assert_eq!(
        bearer_post(&insert, &sam, &event_body(Some("abcde1")))
            .await
            .0,
        200
    );

    g.set_calendar_delay(Duration::from_millis(400));
    let started = Instant::now();
    let pending = {
        let (insert, sam) = (insert.clone(), sam.clone());
        tokio::spawn(async move { bearer_post(&insert, &sam, &event_body(Some("abcde2"))).await })
    };
    let events = g.wait_for_events(2, WAIT).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(350),
        "stored before the delay"
    );
    assert_eq!(events[1].id, "abcde2");
    // Visible to a GET while the insert's answer is still on its way.
    assert_eq!(bearer_get(&events_url(&g, "/abcde2"), &sam).await.0, 200);
    assert!(!pending.is_finished());
    assert_eq!(pending.await.unwrap().0, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let err = g
        .wait_for_events(3, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
}

// ------------------------------------------------------------------------------ records

#[tokio::test]
async fn google_records_every_call() {
    let g = FakeGoogle::start(CID, SECRET).await;
    let t = g.issue_tokens(DEFAULT_ACCOUNT);
    let resp = client()
        .get(format!("{}/nope?a=1", g.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}})
    );
    assert_eq!(bearer_get(&g.userinfo_url(), &t.access_token).await.0, 200);
    let resp = client()
        .post(g.userinfo_url())
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "userinfo takes POST too");
    let _ = refresh(&g, &t.refresh_token).await;
    let _ = authorize(&g, &auth_params("c")).await;

    let calls = g.calls();
    let summary: Vec<(String, String, u16)> = calls
        .iter()
        .map(|c| (c.method.clone(), c.path.clone(), c.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("GET".into(), "/nope".into(), 404),
            ("GET".into(), "/v1/userinfo".into(), 200),
            ("POST".into(), "/v1/userinfo".into(), 200),
            ("POST".into(), "/token".into(), 200),
            ("GET".into(), "/o/oauth2/v2/auth".into(), 302),
        ]
    );
    assert_eq!(calls[0].param("a"), Some("1"));
    assert_eq!(calls[1].bearer.as_deref(), Some(t.access_token.as_str()));
    assert_eq!(calls[4].param("state"), Some("st-1"));
    assert_eq!(g.calls_to("/v1/userinfo").len(), 2);
    let waited = g.wait_for_calls("/token", 1, WAIT).await.unwrap();
    assert_eq!(waited[0].method, "POST");
}

// ------------------------------------------------------------------------------ oauth2 crate

/// The `oauth2` crate the bot uses (Basic auth with urlencoded credentials, PKCE) against the
/// fake. Its revocation refuses non-https URLs, so `/revoke` is not driven through it.
#[tokio::test]
async fn google_works_with_the_oauth2_crate() {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
        RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
    };

    let secret = "GOCSPX-s3cr+t/=x%";
    let g = FakeGoogle::start(CID, secret).await;
    let oauth = BasicClient::new(ClientId::new(CID.into()))
        .set_client_secret(ClientSecret::new(secret.into()))
        .set_auth_uri(AuthUrl::new(g.auth_url()).unwrap())
        .set_token_uri(TokenUrl::new(g.token_url()).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scopes(SCOPES.split(' ').map(|s| Scope::new(s.into())))
        .add_extra_param("access_type", "offline")
        .add_extra_param("prompt", "consent")
        .add_extra_param("include_granted_scopes", "true")
        .set_pkce_challenge(challenge)
        .url();
    let loc = g.consent(url.as_str()).await.unwrap();
    let q: HashMap<String, String> = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(&q["state"], csrf.secret());

    let http = client();
    let tokens = oauth
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert_eq!(tokens.expires_in(), Some(Duration::from_secs(3599)));
    let refresh_token = tokens.refresh_token().expect("a refresh token").clone();
    assert_eq!(tokens.scopes().map(Vec::len), Some(4));
    assert!(g.token_calls()[0].basic_auth);

    let refreshed = oauth
        .exchange_refresh_token(&RefreshToken::new(refresh_token.secret().clone()))
        .request_async(&http)
        .await
        .expect("refresh");
    assert!(refreshed.refresh_token().is_none());
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );

    g.revoke_grant(DEFAULT_ACCOUNT);
    let err = oauth
        .exchange_refresh_token(&refresh_token)
        .request_async(&http)
        .await
        .unwrap_err();
    match err {
        oauth2::RequestTokenError::ServerResponse(e) => {
            assert_eq!(
                *e.error(),
                oauth2::basic::BasicErrorResponseType::InvalidGrant
            );
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

#[tokio::test]
async fn google_refuses_an_unregistered_redirect_uri_before_the_code() {
    let g = FakeGoogle::start(CID, SECRET).await;
    let c = code(&g).await;
    g.register_redirect_uris(&["https://bot.example.com/oauth/google/callback"]);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", c.as_str()),
        ("code_verifier", VERIFIER),
        ("redirect_uri", REDIRECT),
        ("client_id", CID),
        ("client_secret", SECRET),
    ];
    let (status, body) = post_form(&g.token_url(), &form, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "redirect_uri_mismatch", "{body}");
    // A wrong secret is refused first, whatever the URI.
    let wrong = [
        ("client_secret", "nope"),
        form[0],
        form[1],
        form[3],
        form[4],
    ];
    let (status, body) = post_form(&g.token_url(), &wrong, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client", "{body}");
    // A registered URI with a made-up code: the client is fine, the grant is not.
    let made_up = [
        ("grant_type", "authorization_code"),
        ("code", "4/0Amadeup"),
        (
            "redirect_uri",
            "https://bot.example.com/oauth/google/callback",
        ),
        ("client_id", CID),
        ("client_secret", SECRET),
    ];
    let (status, body) = post_form(&g.token_url(), &made_up, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant", "{body}");
}
