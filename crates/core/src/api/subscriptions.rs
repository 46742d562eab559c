//! `subscriptions/start`, `stop` and `list` (management-api.md §1.2), with the service's quirks:
//! `start` on an enabled subscription answers 400 AF20024, which means success.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{ApiClient, ApiError};

/// One element of `subscriptions/list`. `status` may be missing (REF's own sample lacks it).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// `contentType`, e.g. `Audit.General`.
    pub content_type: String,
    /// `status` as the service wrote it: `enabled` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// `webhook`; `None` when the subscription has none (`null`).
    #[serde(default)]
    pub webhook: Option<Webhook>,
}

/// A subscription's webhook. Its `authId` is a shared secret and is deliberately not read.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Webhook {
    /// `enabled`, `disabled` or `expired` (management-api.md §1.2).
    #[serde(default)]
    pub status: Option<String>,
    /// The HTTPS endpoint the service posts notifications to.
    #[serde(default)]
    pub address: Option<String>,
    /// When the webhook expires, as the service wrote it (`null` in the reference's sample).
    #[serde(default)]
    pub expiration: Option<String>,
}

/// How [`ApiClient::start_subscription`] succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// The service answered with the subscription, its status `enabled`.
    Started,
    /// The service answered 400 AF20024 "The subscription is already enabled. No property change."
    /// (undocumented; management-api.md §3), which means nothing needed doing.
    AlreadyEnabled,
}

/// How [`ApiClient::stop_subscription`] succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The service answered 200: the subscription is disabled, and content published until it is
    /// started again is lost (management-api.md §1.2).
    Stopped,
    /// The service answered AF20022: there was no subscription for the content type.
    NotSubscribed,
}

impl ApiClient {
    /// Starts (or re-enables) the subscription for one content type. After a start, the first content
    /// can take up to 12 hours to appear (management-api.md §2.2).
    ///
    /// # Errors
    /// [`ApiError::Decode`] when the answer is not a subscription or its status is not `enabled`;
    /// otherwise what [`ApiClient::send`] returns, AF20024 excepted.
    pub async fn start_subscription(&self, content_type: &str) -> Result<StartOutcome, ApiError> {
        let url = self.feed_url("subscriptions/start", &[("contentType", content_type)]);
        let call = format!("subscriptions/start for {content_type}");
        match self
            .send(Method::POST, url, &call, Some(content_type))
            .await
        {
            Ok(answer) => {
                let sub: Subscription =
                    serde_json::from_slice(&answer.body).map_err(|e| ApiError::Decode {
                        call: call.clone(),
                        reason: e.to_string(),
                    })?;
                match sub.status.as_deref() {
                    Some(s) if s.eq_ignore_ascii_case("enabled") => Ok(StartOutcome::Started),
                    other => Err(ApiError::Decode {
                        call,
                        reason: format!(
                            "the subscription's status is {:?} instead of \"enabled\"",
                            other.unwrap_or("missing")
                        ),
                    }),
                }
            }
            Err(ApiError::Service(e)) if e.code == "AF20024" => Ok(StartOutcome::AlreadyEnabled),
            Err(e) => Err(e),
        }
    }

    /// Stops the subscription for one content type. Stopping one that does not exist is not an error.
    ///
    /// # Errors
    /// What [`ApiClient::send`] returns, AF20022 excepted.
    pub async fn stop_subscription(&self, content_type: &str) -> Result<StopOutcome, ApiError> {
        let url = self.feed_url("subscriptions/stop", &[("contentType", content_type)]);
        let call = format!("subscriptions/stop for {content_type}");
        match self
            .send(Method::POST, url, &call, Some(content_type))
            .await
        {
            Ok(_) => Ok(StopOutcome::Stopped),
            Err(ApiError::Service(e)) if e.code == "AF20022" => Ok(StopOutcome::NotSubscribed),
            Err(e) => Err(e),
        }
    }

    /// Every subscription the tenant has, enabled or not.
    ///
    /// # Errors
    /// [`ApiError::Decode`] when the answer is not a JSON array of subscriptions; otherwise what
    /// [`ApiClient::send`] returns.
    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>, ApiError> {
        let url = self.feed_url("subscriptions/list", &[]);
        let call = "subscriptions/list";
        let answer = self.send(Method::GET, url, call, None).await?;
        serde_json::from_slice(&answer.body).map_err(|e| ApiError::Decode {
            call: call.to_owned(),
            reason: e.to_string(),
        })
    }
}
