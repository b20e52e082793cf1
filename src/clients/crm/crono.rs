//! Crono (`{CRONO_API_URL}/api/v1`), with a team's public key (`X-Api-Key`) and private key
//! (`X-Api-Secret`). Answers are wrapped `{data, isSuccess, errors}`.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::clients::{ApiError, decode, send};

const PROVIDER: &str = "Crono";

/// A team's Crono keys, sealed together as one secret.
#[derive(Clone, Deserialize, Serialize)]
pub struct CronoKeys {
    pub public_key: String,
    pub private_key: String,
}

impl std::fmt::Debug for CronoKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CronoKeys(..)")
    }
}

impl CronoKeys {
    pub fn seal_text(&self) -> SecretString {
        SecretString::from(serde_json::to_string(self).unwrap_or_default())
    }

    pub fn from_secret(secret: &SecretString) -> Option<Self> {
        serde_json::from_str(secret.expose_secret()).ok()
    }
}

#[derive(Clone)]
pub struct Crono {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct Wrapped {
    #[serde(default, rename = "isSuccess", alias = "IsSuccess")]
    is_success: Option<bool>,
}

impl Crono {
    /// `api_url` is the host (`https://ext.crono.one`); `/api/v1` is appended.
    pub fn new(http: reqwest::Client, api_url: &str) -> Self {
        Self {
            http,
            base: format!("{}/api/v1", api_url.trim_end_matches('/')),
        }
    }

    fn get(&self, keys: &CronoKeys, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .header("X-Api-Key", &keys.public_key)
            .header("X-Api-Secret", &keys.private_key)
    }

    /// Checks a pair of keys with `GET /Users`. An answer of `isSuccess: false` is a refusal
    /// even when it comes with HTTP 200.
    pub async fn check(&self, keys: &CronoKeys) -> Result<(), ApiError> {
        let body = send(PROVIDER, "users.list", self.get(keys, "/Users")).await?;
        let answer: Wrapped = decode(PROVIDER, &body)?;
        match answer.is_success {
            Some(false) => Err(ApiError::Unauthorized {
                provider: PROVIDER,
                status: 200,
            }),
            _ => Ok(()),
        }
    }
}
