//! Fathom's external API (`X-Api-Key`, one key per person). Meetings are listed without
//! summaries or transcripts (those count against the "heavy" limit); the chosen meeting's
//! summary and transcript are fetched on their own.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{ApiError, decode, send};
use crate::domain::meeting::{Meeting, Summary, TranscriptLine};

const PROVIDER: &str = "fathom";

#[derive(Clone)]
pub struct Fathom {
    http: reqwest::Client,
    base: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MeetingPage {
    #[serde(default)]
    pub items: Vec<Meeting>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Which meetings to list.
#[derive(Clone, Debug, Default)]
pub struct MeetingQuery {
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
}

impl Fathom {
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    fn get(&self, key: &SecretString, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .header("X-Api-Key", key.expose_secret())
            .timeout(std::time::Duration::from_secs(20))
    }

    /// One page of meetings, without summaries or transcripts.
    pub async fn meetings(
        &self,
        key: &SecretString,
        query: &MeetingQuery,
    ) -> Result<MeetingPage, ApiError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(t) = query.created_after {
            params.push((
                "created_after",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ));
        }
        if let Some(t) = query.created_before {
            params.push((
                "created_before",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ));
        }
        if let Some(c) = &query.cursor {
            params.push(("cursor", c.clone()));
        }
        let body = send(
            PROVIDER,
            "meetings",
            self.get(key, "/meetings").query(&params),
        )
        .await?;
        decode(PROVIDER, &body)
    }

    /// Checks a key with the smallest possible call.
    pub async fn check_key(&self, key: &SecretString) -> Result<(), ApiError> {
        let query = MeetingQuery {
            created_after: Some(Utc::now() - chrono::Duration::minutes(1)),
            ..Default::default()
        };
        self.meetings(key, &query).await.map(|_| ())
    }

    pub async fn summary(
        &self,
        key: &SecretString,
        recording_id: i64,
    ) -> Result<Option<String>, ApiError> {
        #[derive(Deserialize)]
        struct Body {
            summary: Option<Summary>,
        }
        let body = send(
            PROVIDER,
            "summary",
            self.get(key, &format!("/recordings/{recording_id}/summary")),
        )
        .await?;
        let body: Body = decode(PROVIDER, &body)?;
        Ok(body.summary.and_then(|s| s.markdown_formatted))
    }

    pub async fn transcript(
        &self,
        key: &SecretString,
        recording_id: i64,
    ) -> Result<Vec<TranscriptLine>, ApiError> {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            transcript: Vec<TranscriptLine>,
        }
        let body = send(
            PROVIDER,
            "transcript",
            self.get(key, &format!("/recordings/{recording_id}/transcript")),
        )
        .await?;
        let body: Body = decode(PROVIDER, &body)?;
        Ok(body.transcript)
    }
}

/// A webhook Fathom made: its id and signing secret (shown only in this answer).
#[derive(Clone, Deserialize)]
pub struct NewWebhook {
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn id_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "a webhook id, not {other}"
        ))),
    }
}

impl Fathom {
    /// A webhook for the key's own recordings, delivering to `destination_url` with the
    /// summary (what the meeting-ready DM and the draft use).
    pub async fn create_webhook(
        &self,
        key: &SecretString,
        destination_url: &str,
    ) -> Result<NewWebhook, ApiError> {
        let body = serde_json::json!({
            "destination_url": destination_url,
            "triggered_for": ["my_recordings"],
            "include_summary": true,
            "include_transcript": false,
            "include_action_items": false,
            "include_crm_matches": false,
        });
        let request = self
            .http
            .post(format!("{}/webhooks", self.base))
            .header("X-Api-Key", key.expose_secret())
            .timeout(std::time::Duration::from_secs(20))
            .json(&body);
        let answer = send(PROVIDER, "webhooks.create", request).await?;
        decode(PROVIDER, &answer)
    }

    /// Deletes a webhook; one Fathom no longer has counts as deleted.
    pub async fn delete_webhook(&self, key: &SecretString, id: &str) -> Result<(), ApiError> {
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let request = self
            .http
            .delete(format!("{}/webhooks/{id}", self.base))
            .header("X-Api-Key", key.expose_secret())
            .timeout(std::time::Duration::from_secs(20));
        match send(PROVIDER, "webhooks.delete", request).await {
            Ok(_) | Err(ApiError::Rejected { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Why a webhook delivery was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No signature matches (forged, or signed with another secret).
    BadSignature,
    /// Its timestamp is more than five minutes off.
    Stale,
}

/// How far a delivery's timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 300;

/// Checks a delivery as Standard Webhooks: HMAC-SHA256 over `{id}.{timestamp}.{body}` keyed
/// with the base64-decoded secret after `whsec_`, compared in constant time with every `v1,`
/// signature of the header; a timestamp more than five minutes off is refused.
pub fn verify_delivery(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signatures: &str,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{KeyInit, Mac};
    let sent: i64 = timestamp.trim().parse().map_err(|_| Refusal::Stale)?;
    if (now.timestamp() - sent).abs() > TOLERANCE_SECS {
        return Err(Refusal::Stale);
    }
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| Refusal::BadSignature)?;
    for signature in signatures.split(' ') {
        let Some(encoded) = signature.strip_prefix("v1,") else {
            continue;
        };
        let Ok(expected) = STANDARD.decode(encoded) else {
            continue;
        };
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key) else {
            return Err(Refusal::BadSignature);
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.trim().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(Refusal::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example.
    #[test]
    fn the_specifications_example_verifies() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let timestamp = "1614265330";
        let body = br#"{"test": 2432232314}"#;
        let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let at = DateTime::from_timestamp(1_614_265_330, 0).unwrap();
        assert_eq!(
            verify_delivery(secret, id, timestamp, body, signature, at),
            Ok(())
        );
        let several = format!("v1,bm90IGl0 {signature}");
        assert_eq!(
            verify_delivery(secret, id, timestamp, body, &several, at),
            Ok(())
        );
        assert_eq!(
            verify_delivery(secret, id, timestamp, b"{}", signature, at),
            Err(Refusal::BadSignature)
        );
        let later = at + chrono::Duration::minutes(10);
        assert_eq!(
            verify_delivery(secret, id, timestamp, body, signature, later),
            Err(Refusal::Stale)
        );
        assert_eq!(
            verify_delivery("whsec_b3RoZXI=", id, timestamp, body, signature, at),
            Err(Refusal::BadSignature)
        );
    }
}
