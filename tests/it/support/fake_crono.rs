//! A fake Crono (`/api/v1`) on 127.0.0.1, for now only what `/crono-connect` uses: `GET
//! /Users` checks the `X-Api-Key` / `X-Api-Secret` pair. Registered pairs answer 200
//! `{data:[…], isSuccess:true, errors:[]}`; anything else 401 `{data:null, isSuccess:false,
//! errors:[{code, message}]}`. `refuse_with_200()` makes a wrong pair answer HTTP 200 with
//! `isSuccess:false` instead (the wrapped shape allows both). Every call is counted with the
//! public key it carried.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

#[derive(Default)]
struct St {
    keys: HashSet<(String, String)>,
    calls: Vec<Option<String>>,
    refuse_with_200: bool,
}

#[derive(Clone)]
pub struct FakeCrono {
    url: String,
    st: Arc<Mutex<St>>,
}

impl FakeCrono {
    pub async fn start() -> Self {
        let st = Arc::new(Mutex::new(St::default()));
        let app = Router::new()
            .route("/api/v1/Users", get(users))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { url, st }
    }

    /// `CRONO_API_URL` (the host; the bot appends `/api/v1`).
    pub fn base_url(&self) -> String {
        self.url.clone()
    }

    pub fn add_keys(&self, public: &str, private: &str) {
        self.st
            .lock()
            .unwrap()
            .keys
            .insert((public.to_owned(), private.to_owned()));
    }

    pub fn refuse_with_200(&self) {
        self.st.lock().unwrap().refuse_with_200 = true;
    }

    /// The public key of every call, in order.
    pub fn calls(&self) -> Vec<Option<String>> {
        self.st.lock().unwrap().calls.clone()
    }
}

async fn users(State(st): State<Arc<Mutex<St>>>, headers: HeaderMap) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (public, private) = (header("x-api-key"), header("x-api-secret"));
    let mut st = st.lock().unwrap();
    st.calls.push(public.clone());
    let known = matches!((&public, &private), (Some(p), Some(s)) if st.keys.contains(&(p.clone(), s.clone())));
    if known {
        return (
            StatusCode::OK,
            axum::Json(json!({
                "data": [{ "objectId": "u-1", "email": "admin@seller.example", "firstName": "Admin" }],
                "isSuccess": true,
                "errors": []
            })),
        )
            .into_response();
    }
    let status = if st.refuse_with_200 {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    (
        status,
        axum::Json(json!({
            "data": null,
            "isSuccess": false,
            "errors": [{ "code": "Unauthorized", "message": "Invalid api key" }]
        })),
    )
        .into_response()
}
