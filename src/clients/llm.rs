//! Language models behind a small trait (a second provider slots in beside Anthropic).
//! Anthropic's Messages API: retried with backoff and jitter on 429/500/529 (honouring
//! `retry-after`), never on 400/401 or a spend limit.

use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, decode, send};

/// One request: a system prompt and one user message, and optionally a tool the model must
/// answer with (so the answer's shape is the API's job, not a prose instruction).
#[derive(Clone, Debug)]
pub struct Prompt {
    pub system: String,
    pub user: String,
    pub max_tokens: u32,
    pub tool: Option<Tool>,
}

/// A tool whose `input_schema` is the shape of the answer wanted.
#[derive(Clone, Debug)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub input_schema: serde_json::Value,
}

#[async_trait]
pub trait Llm: Send + Sync {
    /// A name for people ("Claude") and logs.
    fn name(&self) -> &str;
    /// The model's answer: with a tool, the tool call's input as JSON text; else its text.
    async fn complete(&self, prompt: &Prompt) -> Result<String, ApiError>;
}

pub struct Anthropic {
    http: reqwest::Client,
    base: String,
    key: SecretString,
    model: String,
    backoff: ExponentialBuilder,
}

const PROVIDER: &str = "anthropic";

impl Anthropic {
    pub fn new(http: reqwest::Client, base: &str, key: SecretString, model: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            model: model.to_owned(),
            backoff: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(20))
                .with_max_times(3)
                .with_jitter(),
        }
    }

    async fn once(&self, prompt: &Prompt) -> Result<String, ApiError> {
        let mut body = json!({
            "model": self.model,
            "max_tokens": prompt.max_tokens,
            "system": prompt.system,
            "temperature": 0.3,
            "messages": [{ "role": "user", "content": prompt.user }],
        });
        if let Some(tool) = &prompt.tool {
            body["tools"] = json!([{
                "name": tool.name,
                "description": tool.description,
                "input_schema": tool.input_schema,
            }]);
            body["tool_choice"] = json!({ "type": "tool", "name": tool.name });
        }
        let request = self
            .http
            .post(format!("{}/v1/messages", self.base))
            .header("x-api-key", self.key.expose_secret())
            .header("anthropic-version", "2023-06-01")
            .timeout(Duration::from_secs(90))
            .json(&body);
        let body = send(PROVIDER, "messages", request).await?;
        #[derive(Deserialize)]
        struct Block {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            text: String,
            #[serde(default)]
            input: Option<serde_json::Value>,
        }
        #[derive(Deserialize)]
        struct Answer {
            content: Vec<Block>,
        }
        let answer: Answer = decode(PROVIDER, &body)?;
        if let Some(input) = answer
            .content
            .iter()
            .find(|b| b.kind == "tool_use")
            .and_then(|b| b.input.as_ref())
        {
            return Ok(input.to_string());
        }
        let text: String = answer
            .content
            .into_iter()
            .filter(|b| b.kind == "text")
            .map(|b| b.text)
            .collect();
        if text.trim().is_empty() {
            return Err(ApiError::Decode {
                provider: PROVIDER,
                detail: "the answer had no text".to_owned(),
            });
        }
        Ok(text)
    }
}

/// The longest `retry-after` worth waiting for: a longer one is beyond any draft's budget,
/// so the caller falls back at once instead of waiting.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);

/// 429 without `retry-after` and with a spend or credit message will not get better; nor
/// will anything that asks us to wait longer than `MAX_RETRY_AFTER`.
fn retryable(e: &ApiError) -> bool {
    if e.retry_after().is_some_and(|d| d > MAX_RETRY_AFTER) {
        return false;
    }
    match e {
        ApiError::RateLimited {
            retry_after: None,
            detail,
            ..
        } => {
            let d = detail.to_ascii_lowercase();
            !(d.contains("spend") || d.contains("credit") || d.contains("billing"))
        }
        other => other.is_transient(),
    }
}

#[async_trait]
impl Llm for Anthropic {
    fn name(&self) -> &str {
        "Claude"
    }

    async fn complete(&self, prompt: &Prompt) -> Result<String, ApiError> {
        (|| self.once(prompt))
            .retry(self.backoff)
            .when(retryable)
            .adjust(|e, delay| delay.map(|d| e.retry_after().unwrap_or(d)))
            .notify(|e, delay| tracing::warn!(error = %e, ?delay, "LLM call failed; retrying"))
            .await
    }
}

/// Whether Anthropic accepts the key: one cheap authenticated call (`GET /v1/models`,
/// `limit=1`), for `doctor`. `Unauthorized` means the key was refused.
pub async fn check_key(
    http: &reqwest::Client,
    base: &str,
    key: &SecretString,
) -> Result<(), ApiError> {
    let request = http
        .get(format!("{}/v1/models", base.trim_end_matches('/')))
        .query(&[("limit", "1")])
        .header("x-api-key", key.expose_secret())
        .header("anthropic-version", "2023-06-01")
        .timeout(Duration::from_secs(20));
    send(PROVIDER, "models", request).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_limits_are_not_retried() {
        let spend = ApiError::RateLimited {
            provider: PROVIDER,
            retry_after: None,
            detail: r#"{"error":{"message":"You have reached your specified workspace API usage limits / spend limit"}}"#.into(),
        };
        assert!(!retryable(&spend));
        let busy = ApiError::RateLimited {
            provider: PROVIDER,
            retry_after: Some(Duration::from_secs(1)),
            detail: String::new(),
        };
        assert!(retryable(&busy));
        assert!(retryable(&ApiError::Unavailable {
            provider: PROVIDER,
            status: 529
        }));
        assert!(!retryable(&ApiError::Unauthorized {
            provider: PROVIDER,
            status: 401
        }));
        assert!(!retryable(&ApiError::Rejected {
            provider: PROVIDER,
            status: 400,
            message: String::new()
        }));
    }
}
