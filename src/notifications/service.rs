//! Notification rules: queueing in the caller's transaction, delivery through the
//! configured provider with retries, push subscriptions.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::web;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::json;
use crate::ids::{MessageId, SubscriptionId, UserId};
use crate::ports::MessageStatus;

use super::model::{Message, MessageRow, NewSubscription, Subscription, SubscriptionRow};
use crate::messages::preferences::{self, Channel, Preferences};
use super::store;
use crate::config::{NotificationSettings, Provider};
use crate::db::{self, Db, DbConn};
use crate::error::{is_unique_violation, ApiError};
use crate::http::{Choice, PageRequest, Paginated};
use crate::ops::{CheckFuture, CheckState, ReadinessCheck};
use crate::outbox::{Handled, Job, JobError, Outcome, Policy, Record};
use crate::ports::UserDirectory;
use super::push::{self, encrypt, Pushed, Vapid};
use super::sms::{Sms, Texted};
use std::sync::Arc;
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

/// Where each channel's messages go.
pub struct Senders {
    pub mailer: Mailer,
    pub sms: Sms,
    /// `None`: no VAPID key, no Web Push.
    pub vapid: Option<Vapid>,
    pub http: reqwest::Client,
    /// Told when an SMS provider refuses a number for good.
    pub users: Arc<dyn UserDirectory>,
}

impl Senders {
    pub fn from_settings(s: &NotificationSettings, users: Arc<dyn UserDirectory>) -> Result<Senders, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Senders {
            mailer: Mailer::from_settings(s)?,
            sms: Sms::from_settings(s)?,
            vapid: Vapid::from_settings(&s.vapid_public_key, &s.vapid_private_key, &s.vapid_subject)?,
            http,
            users,
        })
    }
}

pub struct NotificationsService {
    db: Db,
    senders: Senders,
    /// Whether `http://` push endpoints on this machine are accepted (not in production).
    pub plain_http: bool,
    policy: Policy,
    metrics: web::Data<Metrics>,
}

impl NotificationsService {
    pub fn new(
        db: Db,
        senders: Senders,
        settings: &NotificationSettings,
        metrics: web::Data<Metrics>,
    ) -> Self {
        let policy = Policy {
            max_attempts: settings.max_attempts,
            backoff: settings.backoff,
            max_backoff: settings.max_backoff,
            lease: settings.lease,
            poll: settings.poll.min(Duration::from_secs(1)),
            batch: 20,
            keep_done: true,
        };
        NotificationsService {
            db,
            senders,
            plain_http: false,
            policy,
            metrics,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The key browsers subscribe with; `None` when Web Push is off.
    pub fn vapid_public_key(&self) -> Option<&str> {
        self.senders.vapid.as_ref().map(Vapid::public_key)
    }

    /// Sends one message through its channel.
    async fn send(&self, m: &MessageRow) -> Outcome {
        match m.channel.as_str() {
            "email" => self.senders.mailer.send(m).await.map_err(JobError::from),
            "sms" => match self.senders.sms.send(&m.recipient, &m.text_body).await {
                Texted::Sent => Ok(()),
                Texted::Retry(e) => Err(e.into()),
                Texted::Refused(e) => Err(JobError::permanent(e)),
                Texted::Unreachable(e) => {
                    if let Err(told) = self.senders.users.phone_unreachable(m.user_id, &m.recipient).await {
                        // Failing the message anyway: the number is refused; the flag is
                        // cleared the next time a message to it fails.
                        tracing::warn!(user = %m.user_id, error = %told, "could not clear phoneVerified");
                    }
                    Err(JobError::permanent(e))
                }
            },
            "push" => self.push(m).await,
            other => Err(JobError::permanent(format!("no channel {other:?}"))),
        }
    }

    /// A push message goes to each of the user's browsers. One that is gone (404/410) is
    /// forgotten; a push service busy or down (429, 5xx) has the message tried again later.
    async fn push(&self, m: &MessageRow) -> Outcome {
        let Some(vapid) = &self.senders.vapid else {
            return Err(JobError::permanent("Web Push is off: no VAPID key"));
        };
        let user = m.user_id;
        let devices = self
            .db
            .run(move |conn| Ok(store::web_subscriptions(conn, user)?))
            .await
            .map_err(|e| JobError::from(format!("reading subscriptions: {e}")))?;
        if devices.is_empty() {
            return Err(JobError::permanent("no browser subscribed any more"));
        }
        let urgency = if m.kind.contains("reminder") || m.kind == "overdue_return" { "high" } else { "normal" };
        let mut retry = None;
        let mut delivered = 0;
        for device in devices {
            let (Some(p256dh), Some(auth)) = (&device.p256dh, &device.auth) else {
                continue;
            };
            let body = match encrypt(m.text_body.as_bytes(), p256dh, auth) {
                Ok(body) => body,
                Err(e) => {
                    tracing::warn!(subscription = %device.id, error = %e, "cannot encrypt for a subscription");
                    continue;
                }
            };
            match push::send(&self.senders.http, vapid, &device.token, body, urgency).await {
                Pushed::Accepted => delivered += 1,
                Pushed::Gone => {
                    let id = device.id;
                    let deleted = self
                        .db
                        .writing(move |conn| Ok(store::delete_subscription_by_id(conn, id)?))
                        .await;
                    if let Err(e) = deleted {
                        tracing::warn!(subscription = %id, error = %e, "cannot delete a gone subscription");
                    }
                }
                Pushed::Retry(e) => retry = Some(e),
                Pushed::Refused(e) => {
                    tracing::warn!(subscription = %device.id, error = %e, "push refused");
                }
            }
        }
        match retry {
            Some(e) => Err(e.into()),
            None if delivered > 0 => Ok(()),
            None => Err(JobError::permanent("no browser took the message")),
        }
    }

    /// Sends each job's message once; one outcome per job. A message already sent (its job
    /// came back after a lease ran out) is not sent again. The batch's messages are read in
    /// one query, and each attempt is recorded with the batch's settlement.
    pub async fn deliver(&self, jobs: Vec<Job>) -> Handled {
        let ids: Vec<Option<MessageId>> = jobs.iter().map(|j| j.payload.parse().ok()).collect();
        let wanted: Vec<MessageId> = ids.iter().flatten().copied().collect();
        let mut messages: HashMap<MessageId, MessageRow> =
            match self.db.run(move |conn| Ok(store::messages(conn, &wanted)?)).await {
                Ok(rows) => rows.into_iter().map(|m| (m.id, m)).collect(),
                Err(e) => {
                    let reason = format!("reading messages: {e}");
                    return jobs.iter().map(|_| Err(reason.clone().into())).collect::<Vec<_>>().into();
                }
            };
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut attempts = Vec::with_capacity(jobs.len());
        for (job, id) in jobs.iter().zip(ids) {
            let Some(id) = id else {
                outcomes.push(Err(JobError::permanent(format!("not a message id: {:?}", job.payload))));
                continue;
            };
            // Taken out so that a message twice in one batch goes once.
            let Some(message) = messages.remove(&id) else {
                outcomes.push(Ok(()));
                continue;
            };
            if message.status == MessageStatus::Sent || message.status == MessageStatus::Failed {
                outcomes.push(Ok(()));
                continue;
            }
            let outcome = self.send(&message).await;
            let status = match &outcome {
                Ok(()) => MessageStatus::Sent,
                Err(e) if e.permanent || job.attempts >= self.policy.max_attempts => MessageStatus::Failed,
                Err(_) => MessageStatus::Pending,
            };
            if status != MessageStatus::Pending {
                self.metrics
                    .notifications
                    .with_label_values(&[message.channel.as_str(), status.name()])
                    .inc();
            }
            let error = outcome.as_ref().err().map(|e| e.reason.clone());
            attempts.push(store::Attempt {
                message,
                status,
                attempts: job.attempts,
                error,
            });
            outcomes.push(outcome);
        }
        // Sent but not recorded (the settlement's write failed): at least once means the
        // message goes again when the lease runs out.
        let record: Record =
            Box::new(move |conn| store::record_attempts(conn, &attempts, db::to_db(time::now())));
        Handled {
            outcomes,
            record: Some(record),
        }
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

    /// Stores a device or a browser; the same token or endpoint again answers the first
    /// subscription (`false`: not created now), a browser's keys updated.
    pub async fn subscribe(
        &self,
        user: UserId,
        new: NewSubscription,
    ) -> Result<(Subscription, bool), ApiError> {
        self.db
            .run(move |conn| {
                let again = |conn: &mut DbConn| -> Result<Option<Subscription>, ApiError> {
                    let Some(existing) = store::subscription_by_token(conn, user, &new.token)? else {
                        return Ok(None);
                    };
                    if let Some((p256dh, auth)) = &new.keys {
                        store::update_keys(conn, existing.id, p256dh, auth)?;
                    }
                    Ok(Some(existing.to_api()))
                };
                if let Some(existing) = again(conn)? {
                    return Ok((existing, false));
                }
                let (p256dh, auth) = new.keys.clone().unzip();
                let row = SubscriptionRow {
                    id: SubscriptionId::random(),
                    user_id: user,
                    token: new.token.clone(),
                    platform: new.platform,
                    created_at: db::to_db(time::now()),
                    p256dh,
                    auth,
                };
                match store::insert_subscription(conn, &row) {
                    Ok(()) => Ok((row.to_api(), true)),
                    // The same token arrived twice at once: the other request stored it.
                    Err(e) if is_unique_violation(&e) => again(conn)?
                        .map(|s| (s, false))
                        .ok_or(ApiError::internal("subscription vanished")),
                    Err(e) => Err(e.into()),
                }
            })
            .await
    }

    /// The caller's whole map of choices.
    pub async fn preferences(&self, user: UserId) -> Result<Preferences, ApiError> {
        self.db
            .run(move |conn| Ok(preferences::load(conn, user)?))
            .await
    }

    /// Stores the choices given; answers the whole map.
    pub async fn set_preferences(
        &self,
        user: UserId,
        choices: Vec<(Channel, &'static str, bool)>,
    ) -> Result<Preferences, ApiError> {
        self.db
            .write(move |conn| {
                preferences::save(conn, user, &choices)?;
                Ok(preferences::load(conn, user)?)
            })
            .await
    }

    pub async fn unsubscribe(&self, user: UserId, id: SubscriptionId) -> Result<(), ApiError> {
        let deleted = self
            .db
            .writing(move |conn| Ok(store::delete_subscription(conn, id, user)?))
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
                json!({
                    "status": "up",
                    "provider": self.senders.mailer.name(),
                    "sms": self.senders.sms.name(),
                    "push": self.senders.vapid.is_some(),
                }),
                CheckState::Up,
            )
        })
    }
}
