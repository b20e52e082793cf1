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
