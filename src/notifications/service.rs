//! Notification rules: queueing in the caller's transaction, delivery through the
//! configured provider with retries, push subscriptions.

use std::time::Duration;

use actix_web::web;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::json;
use crate::ids::{MessageId, SubscriptionId, UserId};
use crate::ports::MessageStatus;

use super::model::{Message, MessageRow, Platform, Subscription, SubscriptionRow};
use super::store;
use crate::config::{NotificationSettings, Provider};
use crate::db::{self, Db};
use crate::error::{is_unique_violation, ApiError};
use crate::http::{Choice, PageRequest, Paginated};
use crate::ops::{CheckFuture, CheckState, ReadinessCheck};
use crate::outbox::{Job, Policy, Settled};
use crate::telemetry::Metrics;
use crate::time;

pub use crate::ports::MESSAGE_TOPIC as TOPIC;

/// Where messages go.
pub enum Mailer {
    /// Writes each message to the log.
    Log,
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
}

impl Mailer {
    pub fn from_settings(s: &NotificationSettings) -> Result<Mailer, String> {
        match s.provider {
            Provider::Log => Ok(Mailer::Log),
            Provider::Smtp => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&s.smtp_url)
                    .map_err(|e| format!("SMTP_URL is not a valid SMTP URL: {e}"))?
                    .timeout(Some(Duration::from_secs(15)))
                    .build();
                let from = s
                    .smtp_from
                    .parse::<Mailbox>()
                    .map_err(|e| format!("SMTP_FROM is not an address: {e}"))?;
                Ok(Mailer::Smtp { transport, from })
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Mailer::Log => "log",
            Mailer::Smtp { .. } => "smtp",
        }
    }

    async fn send(&self, m: &MessageRow) -> Result<(), String> {
        match self {
            Mailer::Log => {
                tracing::info!(
                    message = %m.id, kind = %m.kind, to = %m.recipient, subject = %m.subject,
                    "email (log provider)"
                );
                tracing::debug!(message = %m.id, body = ?m.text_body, "email body (log provider)");
                Ok(())
            }
            Mailer::Smtp { transport, from } => {
                let to = m
                    .recipient
                    .parse::<Mailbox>()
                    .map_err(|e| format!("bad recipient: {e}"))?;
                let email = lettre::Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(m.subject.clone())
                    .multipart(MultiPart::alternative_plain_html(
                        m.text_body.clone(),
                        m.html_body.clone(),
                    ))
                    .map_err(|e| format!("building the email: {e}"))?;
                transport
                    .send(email)
                    .await
                    .map(drop)
                    .map_err(|e| format!("SMTP: {e}"))
            }
        }
    }
}

pub struct NotificationsService {
    db: Db,
    mailer: Mailer,
    policy: Policy,
    metrics: web::Data<Metrics>,
}

impl NotificationsService {
    pub fn new(
        db: Db,
        mailer: Mailer,
        settings: &NotificationSettings,
        metrics: web::Data<Metrics>,
    ) -> Self {
        let policy = Policy {
            max_attempts: settings.max_attempts,
            backoff: settings.backoff,
            max_backoff: settings.max_backoff,
            lease: Duration::from_secs(120),
            poll: settings.poll.min(Duration::from_secs(1)),
            batch: 20,
            keep_done: true,
        };
        NotificationsService {
            db,
            mailer,
            policy,
            metrics,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn count(&self, settled: Settled) {
        let status = match settled {
            Settled::Done => MessageStatus::Sent,
            Settled::Failed => MessageStatus::Failed,
            Settled::Retry => return,
        };
        self.metrics
            .notifications
            .with_label_values(&[status.name()])
            .inc();
    }

    /// Sends each job's message once; one outcome per job. A message already sent (its job
    /// came back after a lease ran out) is not sent again.
    pub async fn deliver(&self, jobs: Vec<Job>) -> Vec<Result<(), String>> {
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let Ok(id) = job.payload.parse::<MessageId>() else {
                outcomes.push(Err(format!("not a message id: {:?}", job.payload)));
                continue;
            };
            let message = match self
                .db
                .run(move |conn| Ok(store::message(conn, id)?))
                .await
            {
                Ok(Some(m)) => m,
                Ok(None) => {
                    outcomes.push(Ok(()));
                    continue;
                }
                Err(e) => {
                    outcomes.push(Err(format!("reading message: {e}")));
                    continue;
                }
            };
            if message.status == MessageStatus::Sent {
                outcomes.push(Ok(()));
                continue;
            }
            let outcome = self.mailer.send(&message).await;
            let last = job.attempts >= self.policy.max_attempts;
            let status = match (&outcome, last) {
                (Ok(()), _) => MessageStatus::Sent,
                (Err(_), true) => MessageStatus::Failed,
                (Err(_), false) => MessageStatus::Pending,
            };
            let error = outcome.as_ref().err().cloned();
            let attempts = job.attempts;
            let recorded = self
                .db
                .run(move |conn| {
                    let now = db::to_db(time::now());
                    Ok(store::record_attempt(
                        conn,
                        message.id,
                        status,
                        attempts,
                        error.as_deref(),
                        now,
                    )?)
                })
                .await;
            outcomes.push(match (outcome, recorded) {
                (Err(e), _) => Err(e),
                // Sent but not recorded: at least once means it may go again.
                (Ok(()), Err(e)) => Err(format!("sent, but recording it failed: {e}")),
                (Ok(()), Ok(_)) => Ok(()),
            });
        }
        outcomes
    }

    pub async fn list(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Paginated<Message>, ApiError> {
        let (rows, total) = self
            .db
            .run(move |conn| Ok(store::list_for(conn, user, page.offset(), page.limit())?))
            .await?;
        Ok(page.wrap(rows.iter().map(MessageRow::to_api).collect(), total))
    }

    /// Stores a device token; the same token again answers the first subscription
    /// (`false`: not created now).
    pub async fn subscribe(
        &self,
        user: UserId,
        token: String,
        platform: Platform,
    ) -> Result<(Subscription, bool), ApiError> {
        self.db
            .run(move |conn| {
                if let Some(existing) = store::subscription_by_token(conn, user, &token)? {
                    return Ok((existing.to_api(), false));
                }
                let row = SubscriptionRow {
                    id: SubscriptionId::random(),
                    user_id: user,
                    token: token.clone(),
                    platform,
                    created_at: db::to_db(time::now()),
                };
                match store::insert_subscription(conn, &row) {
                    Ok(()) => Ok((row.to_api(), true)),
                    // The same token arrived twice at once: the other request stored it.
                    Err(e) if is_unique_violation(&e) => {
                        store::subscription_by_token(conn, user, &token)?
                            .map(|s| (s.to_api(), false))
                            .ok_or(ApiError::internal("subscription vanished"))
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .await
    }

    pub async fn unsubscribe(&self, user: UserId, id: SubscriptionId) -> Result<(), ApiError> {
        let deleted = self
            .db
            .run(move |conn| Ok(store::delete_subscription(conn, id, user)?))
            .await?;
        if deleted == 0 {
            return Err(ApiError::NotFound);
        }
        Ok(())
    }
}

/// The `notifications` entry of `/health/ready`.
impl ReadinessCheck for NotificationsService {
    fn name(&self) -> &'static str {
        "notifications"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            (
                json!({"status": "up", "provider": self.mailer.name()}),
                CheckState::Up,
            )
        })
    }
}
