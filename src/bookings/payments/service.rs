//! Payment rules: a booking's rental paid through the provider, the deposit held while the
//! car is out and settled at return, refunds by policy and by admins, and the one function
//! that applies what the provider says of an intent (the mock's confirmation, Stripe's
//! webhooks and the reconciliation poll all go through [`Payments::apply_intent`]).
//!
//! A call that moves money after a change is committed (a refund, releasing an
//! authorisation, settling a return) is an outbox job written in that change's transaction:
//! it is retried until the provider answers, and its idempotency key makes a retry replay
//! instead of moving the money again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{PaymentKind, PaymentRow, PaymentStatus, SetupRow, Totals};
use super::provider::{
    Capture, Intent, IntentStatus, NewIntent, Notification, PaymentProvider, ProviderError,
    RefundState, SetupIntent,
};
use super::store::{self, Filter};
use crate::bookings::model::{BookingRow, Status};
use crate::bookings::notice::{message, Notice};
use crate::bookings::store as bookings;
use crate::config::PaymentSettings;
use crate::db::{self, Db, DbConn};
use crate::error::ApiError;
use crate::http::{Choice, PageRequest, Paginated};
use crate::ids::{BookingId, PaymentId, SetupId, UserId};
use crate::ops::{CheckFuture, CheckState, ReadinessCheck};
use crate::outbox::{self, Job, Outcome, Policy, Stop};
use serde_json::json;
use crate::ports::{CarSummary, Contact, MessageQueue, Notifier, OutgoingMessage, Ports};
use crate::pricing::{Line, LineKind};
use crate::telemetry::Metrics;
use crate::{money, time};

/// The outbox topic of calls to the payment provider.
pub const TOPIC: &str = "payments";

/// A call to the provider the outbox makes until it is answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Call {
    /// Gives a refund record's money back.
    Refund { payment: PaymentId },
    /// Cancels an intent not paid, or releases a deposit's hold.
    Cancel { payment: PaymentId },
    /// Settles a returned booking: captures what the return added from the deposit, releases
    /// the rest, charges what the deposit does not cover.
    Settle { booking: BookingId },
}

impl Call {
    /// Queues the call within the caller's transaction.
    pub fn queue(&self, conn: &mut DbConn) -> Result<(), ApiError> {
        let payload =
            serde_json::to_string(self).map_err(|e| ApiError::internal(format!("job: {e}")))?;
        outbox::enqueue(conn, TOPIC, &payload)?;
        Ok(())
    }
}

pub struct Payments {
    db: Db,
    provider: Arc<dyn PaymentProvider>,
    ports: Ports,
    metrics: web::Data<Metrics>,
    hold: chrono::Duration,
    free_hours: i64,
    fee_percent: i64,
    reconcile_after: Duration,
    /// Processors let an authorisation lapse after 7 days: a deposit held this long is
    /// authorised anew.
    reauthorize_after: chrono::Duration,
    /// Users' customers at the provider, once read (they never change); the most used
    /// [`CUSTOMERS_KEPT`], so that memory does not grow with the user base.
    customers: quick_cache::sync::Cache<UserId, String>,
}

/// How many users' customers at the provider are kept in memory.
const CUSTOMERS_KEPT: usize = 10_000;

impl Payments {
    pub fn new(
        db: Db,
        provider: Arc<dyn PaymentProvider>,
        ports: Ports,
        metrics: web::Data<Metrics>,
        settings: &PaymentSettings,
    ) -> Self {
        Payments {
            db,
            provider,
            ports,
            metrics,
            hold: chrono::Duration::from_std(settings.hold).unwrap_or(chrono::Duration::MAX),
            free_hours: settings.cancellation_free_hours,
            fee_percent: settings.late_cancellation_fee_percent,
            reconcile_after: settings.reconcile_after,
            reauthorize_after: chrono::Duration::from_std(settings.reauthorize_after)
                .unwrap_or(chrono::Duration::MAX),
            customers: quick_cache::sync::Cache::new(CUSTOMERS_KEPT),
        }
    }

    pub fn provider(&self) -> &Arc<dyn PaymentProvider> {
        &self.provider
    }

    /// How long an unpaid booking holds its slot.
    pub fn hold(&self) -> chrono::Duration {
        self.hold
    }

    /// Times a call to the provider.
    async fn timed<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let answer = call.await;
        self.metrics
            .payment_provider_seconds
            .observe(start.elapsed().as_secs_f64());
        answer
    }

    fn count(&self, row: &PaymentRow) {
        self.metrics
            .payments
            .with_label_values(&[row.kind.name(), row.status.name()])
            .inc();
    }

    /// The user's customer at the provider, made on first need.
    async fn customer(&self, user: UserId) -> Result<String, ApiError> {
        if let Some(found) = self.customers.get(&user) {
            return Ok(found);
        }
        let found = match self.stored_customer(user).await? {
            Some(found) => found,
            None => self.new_customer(user).await?,
        };
        self.customers.insert(user, found.clone());
        Ok(found)
    }

    async fn stored_customer(&self, user: UserId) -> Result<Option<String>, ApiError> {
        let provider = self.provider.name();
        self.db
            .run(move |conn| Ok(store::customer(conn, user, provider)?))
            .await
    }

    /// Makes the user's customer at the provider; of two made at once, the first kept wins.
    async fn new_customer(&self, user: UserId) -> Result<String, ApiError> {
        let provider = self.provider.name();
        let made = self
            .timed(
                self.provider
                    .create_customer(user, &format!("customer:{user}")),
            )
            .await?;
        let reference = made.clone();
        self.db
            .write(move |conn| {
                store::keep_customer(conn, user, provider, &reference, db::to_db(time::now()))?;
                Ok(store::customer(conn, user, provider)?.unwrap_or(reference))
            })
            .await
    }

    /// The rental's payment record of a booking being held, written in the booking's own
    /// transaction (so that a booking never exists without it).
    pub fn record_rental(&self, conn: &mut DbConn, booking: &BookingRow) -> Result<PaymentRow, ApiError> {
        let row = PaymentRow::new(
            PaymentKind::Rental,
            booking.id,
            booking.user_id,
            booking.total_price,
            &booking.currency,
            self.provider.name(),
            booking.created_at,
        );
        store::insert(conn, &row)?;
        Ok(row)
    }

    /// Opens the intent of a booking just held, which the client confirms. When the
    /// provider cannot be reached the booking and its record are gone and the error says so:
    /// the slot is free again.
    pub async fn open_rental(&self, booking: &BookingRow, mut row: PaymentRow) -> Result<PaymentRow, ApiError> {
        let opened = async {
            let customer = self.customer(booking.user_id).await?;
            let new = NewIntent {
                amount: money::to_minor_unit(booking.total_price, &booking.currency),
                currency: &booking.currency,
                customer: &customer,
                capture: Capture::Automatic,
                off_session: None,
                booking: booking.id,
            };
            Ok::<_, ApiError>(
                self.timed(self.provider.create_intent(new, &row.key("create")))
                    .await?,
            )
        }
        .await;
        let (id, booking) = (row.id, booking.id);
        match opened {
            Ok(intent) => {
                row.provider_ref = Some(intent.id);
                row.client_secret = intent.client_secret;
                let update = row.clone();
                // One statement: no transaction around it.
                self.db
                    .writing(move |conn| Ok(store::update(conn, &update)?))
                    .await?;
                self.count(&row);
                Ok(row)
            }
            Err(e) => {
                self.db
                    .write(move |conn| {
                        store::delete(conn, id)?;
                        bookings::discard(conn, booking)?;
                        Ok(())
                    })
                    .await?;
                Err(e)
            }
        }
    }

    /// The latest rental record of each booking.
    pub async fn rentals(&self, ids: Vec<BookingId>) -> Result<Vec<PaymentRow>, ApiError> {
        self.db
            .run(move |conn| Ok(store::rentals_of(conn, &ids)?))
            .await
    }

    pub async fn record(&self, id: PaymentId) -> Result<Option<PaymentRow>, ApiError> {
        self.db.run(move |conn| Ok(store::get(conn, id)?)).await
    }

    /// A payment's record and its booking, read together.
    pub async fn record_with_booking(
        &self,
        id: PaymentId,
    ) -> Result<Option<(PaymentRow, BookingRow)>, ApiError> {
        self.db
            .run(move |conn| Ok(store::with_booking(conn, id)?))
            .await
    }

    pub async fn setup_record(&self, id: SetupId) -> Result<Option<SetupRow>, ApiError> {
        self.db.run(move |conn| Ok(store::setup(conn, id)?)).await
    }

    /// A booking's records, oldest first.
    pub async fn of_booking(&self, id: BookingId) -> Result<Vec<PaymentRow>, ApiError> {
        self.db
            .run(move |conn| Ok(store::of_booking(conn, id)?))
            .await
    }

    /// Applies what the provider says of an intent to its record and, through it, to the
    /// booking; news older than what the record knows changes nothing. This one path serves
    /// the mock's confirmation, webhooks and the reconciliation poll.
    pub async fn apply_intent(&self, intent: &Intent) -> Result<Option<PaymentRow>, ApiError> {
        let (provider, reference) = (self.provider.name(), intent.id.clone());
        match self
            .db
            .run(move |conn| Ok(store::by_ref_with_booking(conn, provider, &reference)?))
            .await?
        {
            Some((row, booking)) => self.apply_to(row, booking, intent).await.map(Some),
            None => Ok(None),
        }
    }

    /// [`Payments::apply_intent`] for the record of the intent and its booking, already
    /// read (the booking as it was: the write reads it again).
    pub async fn apply_to(
        &self,
        row: PaymentRow,
        booking: BookingRow,
        intent: &Intent,
    ) -> Result<PaymentRow, ApiError> {
        if next_state(&row, intent).is_none() {
            return Ok(row);
        }
        let (contact, car) = tokio::try_join!(
            self.ports.users.contact(booking.user_id),
            self.ports.catalog.car(booking.car_id)
        )?;
        // What the renter will be told, rendered before the write: the write renders only
        // what it finds changed meanwhile.
        let ahead: Vec<OutgoingMessage> = match (next_state(&row, intent), &contact) {
            (Some(next), Some(contact)) => {
                let mut next_row = row.clone();
                advance(&mut next_row, next, intent);
                told(&next_row, &booking, car.as_ref(), contact)
                    .into_iter()
                    .map(OutgoingMessage::render_ahead)
                    .collect()
            }
            _ => Vec::new(),
        };
        let intent = intent.clone();
        let row = self
            .db
            .write(move |conn| {
                // Read again inside the write: another path may have applied it meanwhile.
                store::lock(conn, row.booking_id)?;
                let (mut row, current) =
                    store::with_booking(conn, row.id)?.ok_or(ApiError::NotFound)?;
                let Some(next) = next_state(&row, &intent) else {
                    return Ok((row, false));
                };
                advance(&mut row, next, &intent);
                store::update(conn, &row)?;
                let tells = effects(conn, &row, &intent, &current)?;
                if let (true, Some(contact)) = (tells, contact.as_ref()) {
                    let messages = told(&row, &current, car.as_ref(), contact)
                        .into_iter()
                        .map(|m| m.rendered_like(&ahead))
                        .collect();
                    MessageQueue.queue_all(conn, messages)?;
                }
                Ok((row, true))
            })
            .await?;
        if row.1 {
            self.count(&row.0);
        }
        Ok(row.0)
    }

    async fn booking(&self, id: BookingId) -> Result<BookingRow, ApiError> {
        self.db
            .run(move |conn| bookings::get(conn, id)?.ok_or(ApiError::NotFound))
            .await
    }

    /// The booking and its renter's address, read before a write that tells them something.
    async fn booking_and_contact(&self, id: BookingId) -> Result<(BookingRow, Option<Contact>), ApiError> {
        let booking = self.booking(id).await?;
        let contact = self.ports.users.contact(booking.user_id).await?;
        Ok((booking, contact))
    }

    /// Applies a saved card: once set up, it is the booking's card for later charges.
    pub async fn apply_setup(&self, setup: &SetupIntent) -> Result<Option<SetupRow>, ApiError> {
        let (provider, reference, setup) = (self.provider.name(), setup.id.clone(), setup.clone());
        self.db
            .write(move |conn| {
                let Some(mut row) = store::setup_by_ref(conn, provider, &reference)? else {
                    return Ok(None);
                };
                if setup.status != IntentStatus::Succeeded || row.status == PaymentStatus::Succeeded {
                    return Ok(Some(row));
                }
                row.status = PaymentStatus::Succeeded;
                row.updated_at = db::to_db(time::now());
                store::update_setup(conn, &row)?;
                if let Some(card) = &setup.payment_method {
                    bookings::set_payment_method(conn, row.booking_id, card)?;
                }
                Ok(Some(row))
            })
            .await
    }

    /// Starts saving a card for the booking's later charges (`POST
    /// /bookings/{id}/payment-method`).
    pub async fn start_setup(&self, booking: &BookingRow) -> Result<SetupRow, ApiError> {
        let customer = self.customer(booking.user_id).await?;
        let now = db::to_db(time::now());
        let mut row = SetupRow {
            id: SetupId::random(),
            booking_id: booking.id,
            user_id: booking.user_id,
            provider: self.provider.name().to_owned(),
            provider_ref: None,
            client_secret: None,
            status: PaymentStatus::Pending,
            created_at: now,
            updated_at: now,
        };
        let setup = self
            .timed(
                self.provider
                    .create_setup(&customer, &format!("{}:setup", row.id)),
            )
            .await?;
        row.provider_ref = Some(setup.id);
        row.client_secret = setup.client_secret;
        let insert = row.clone();
        self.db
            .write(move |conn| Ok(store::insert_setup(conn, &insert)?))
            .await?;
        Ok(row)
    }

    /// Holds the car's deposit on the booking's saved card at pickup, without taking it.
    /// Nothing to hold: `None`. A declined card is a 402 with the provider's message.
    pub async fn authorize_deposit(
        &self,
        booking: &BookingRow,
        car: &CarSummary,
    ) -> Result<Option<PaymentRow>, ApiError> {
        if car.deposit_minor <= 0 {
            return Ok(None);
        }
        let Some(card) = booking.payment_method.clone() else {
            return Err(ApiError::PaymentRequired(
                "No card is saved for this booking's deposit: save one with POST \
                 /bookings/{id}/payment-method, then pick up again"
                    .into(),
            ));
        };
        self.hold_deposit(booking, car.deposit_minor, &card, None)
            .await
            .map(Some)
    }

    async fn hold_deposit(
        &self,
        booking: &BookingRow,
        amount: i64,
        card: &str,
        replaces: Option<PaymentId>,
    ) -> Result<PaymentRow, ApiError> {
        let mut row = PaymentRow::new(
            PaymentKind::Deposit,
            booking.id,
            booking.user_id,
            amount,
            &booking.currency,
            self.provider.name(),
            db::to_db(time::now()),
        );
        row.parent_id = replaces;
        let insert = row.clone();
        self.db
            .write(move |conn| Ok(store::insert(conn, &insert)?))
            .await?;
        let customer = self.customer(booking.user_id).await?;
        let new = NewIntent {
            amount: money::to_minor_unit(amount, &booking.currency),
            currency: &booking.currency,
            customer: &customer,
            capture: Capture::Manual,
            off_session: Some(card),
            booking: booking.id,
        };
        let held = self
            .timed(self.provider.create_intent(new, &row.key("authorize")))
            .await;
        row.updated_at = db::to_db(time::now());
        let outcome = match held {
            Ok(intent) => {
                row.provider_ref = Some(intent.id);
                row.status = if intent.status == IntentStatus::RequiresCapture {
                    PaymentStatus::Authorized
                } else {
                    PaymentStatus::Failed
                };
                row.failure_message = intent.error;
                if row.status == PaymentStatus::Authorized {
                    Ok(())
                } else {
                    Err(ApiError::PaymentRequired(
                        row.failure_message
                            .clone()
                            .unwrap_or_else(|| "The deposit was not authorised".into()),
                    ))
                }
            }
            Err(e) => {
                row.status = PaymentStatus::Failed;
                row.failure_message = Some(match &e {
                    ProviderError::Declined(message) => message.clone(),
                    other => other.to_string(),
                });
                Err(ApiError::from(e))
            }
        };
        let update = row.clone();
        self.db
            .write(move |conn| Ok(store::update(conn, &update)?))
            .await?;
        self.count(&row);
        outcome.map(|()| row)
    }

    /// Within a cancellation's transaction: a pending payment's intent is cancelled; a paid
    /// booking is refunded under the policy, and gains the lines that say so. Answers the
    /// lines and total the booking now has, when they changed.
    pub fn on_cancel(
        &self,
        conn: &mut DbConn,
        booking: &BookingRow,
        now: DateTime<Utc>,
    ) -> Result<Option<(Vec<Line>, i64)>, ApiError> {
        store::lock(conn, booking.id)?;
        let records = store::of_booking(conn, booking.id)?;
        for open in records
            .iter()
            .filter(|r| r.kind == PaymentKind::Rental && r.status == PaymentStatus::Pending)
        {
            Call::Cancel { payment: open.id }.queue(conn)?;
        }
        let paid: i64 = records
            .iter()
            .filter(|r| r.kind == PaymentKind::Rental)
            .map(PaymentRow::refundable)
            .sum();
        if paid == 0 {
            return Ok(None);
        }
        let lines = booking.lines();
        let early = from_db(booking.pickup_time) - now >= chrono::Duration::hours(self.free_hours);
        let fee = if early {
            0
        } else {
            let rental: i64 = lines
                .iter()
                .filter(|l| matches!(l.kind, LineKind::Rental | LineKind::Discount))
                .map(|l| l.amount_minor)
                .sum();
            percent_half_up(rental.max(0), self.fee_percent).min(paid)
        };
        let mut left = paid - fee;
        for source in records.iter().filter(|r| r.kind == PaymentKind::Rental) {
            let amount = source.refundable().min(left);
            if amount == 0 {
                continue;
            }
            left -= amount;
            let mut refund = PaymentRow::new(
                PaymentKind::Refund,
                booking.id,
                booking.user_id,
                amount,
                &booking.currency,
                self.provider.name(),
                db::to_db(now),
            );
            refund.parent_id = Some(source.id);
            refund.reason = Some("cancellation".into());
            store::insert(conn, &refund)?;
            Call::Refund { payment: refund.id }.queue(conn)?;
        }
        let mut lines = lines;
        let before: i64 = lines.iter().map(|l| l.amount_minor).sum();
        if fee > 0 {
            lines.push(Line {
                kind: LineKind::CancellationFee,
                description: format!("Late cancellation fee, {} %", self.fee_percent),
                code: None,
                quantity: None,
                amount_minor: fee,
            });
        }
        lines.push(Line {
            kind: LineKind::Refund,
            description: "The booking's lines, reversed".into(),
            code: None,
            quantity: None,
            amount_minor: -before,
        });
        let total = lines.iter().map(|l| l.amount_minor).sum();
        Ok(Some((lines, total)))
    }

    /// Within a return's transaction: the settlement of what the return added is queued.
    pub fn on_return(&self, conn: &mut DbConn, booking: BookingId) -> Result<(), ApiError> {
        Call::Settle { booking }.queue(conn)
    }

    /// An admin's refund of up to what was captured less what was already refunded.
    pub async fn refund(
        &self,
        booking: BookingId,
        amount: i64,
        reason: String,
    ) -> Result<PaymentRow, ApiError> {
        let provider = self.provider.name();
        self.db
            .write(move |conn| {
                store::lock(conn, booking)?;
                let current = bookings::get(conn, booking)?.ok_or(ApiError::NotFound)?;
                let records = store::of_booking(conn, booking)?;
                let refundable: i64 = records.iter().map(PaymentRow::refundable).sum();
                let pending: i64 = records
                    .iter()
                    .filter(|r| r.kind == PaymentKind::Refund && r.status == PaymentStatus::Pending)
                    .map(|r| r.amount)
                    .sum();
                if amount > refundable - pending {
                    return Err(ApiError::conflict(format!(
                        "At most {:.2} {} can be refunded",
                        money::to_major((refundable - pending).max(0)),
                        current.currency
                    )));
                }
                let mut left = amount;
                let mut first = None;
                for source in records.iter().filter(|r| r.refundable() > 0) {
                    let part = source.refundable().min(left);
                    if part == 0 {
                        continue;
                    }
                    left -= part;
                    let mut row = PaymentRow::new(
                        PaymentKind::Refund,
                        booking,
                        current.user_id,
                        part,
                        &current.currency,
                        provider,
                        db::to_db(time::now()),
                    );
                    row.parent_id = Some(source.id);
                    row.reason = Some(reason.clone());
                    store::insert(conn, &row)?;
                    Call::Refund { payment: row.id }.queue(conn)?;
                    first.get_or_insert(row);
                }
                first.ok_or_else(|| ApiError::conflict("Nothing was captured to refund"))
            })
            .await
    }

    /// Runs one queued call; the outcome tells the outbox whether to try again.
    pub async fn run(&self, job: &Job) -> Outcome {
        let call: Call = serde_json::from_str(&job.payload)
            .map_err(|e| outbox::JobError::permanent(format!("not a payment call: {e}")))?;
        let outcome = match call {
            Call::Refund { payment } => self.give_back(payment).await,
            Call::Cancel { payment } => self.cancel(payment).await,
            Call::Settle { booking } => self.settle(booking).await,
        };
        outcome.map_err(|e| match e {
            // The provider refused for good: retrying would change nothing.
            ApiError::PaymentProviderError | ApiError::PaymentRequired(_) | ApiError::NotFound => {
                outbox::JobError::permanent(e.to_string())
            }
            other => other.to_string().into(),
        })
    }

    async fn give_back(&self, id: PaymentId) -> Result<(), ApiError> {
        let Some(refund) = self.record(id).await? else {
            return Ok(());
        };
        if refund.status != PaymentStatus::Pending {
            return Ok(());
        }
        let parent = match refund.parent_id {
            Some(parent) => self.record(parent).await?,
            None => None,
        }
        .ok_or_else(|| ApiError::internal(format!("refund {id} has no payment")))?;
        let intent = parent
            .provider_ref
            .clone()
            .ok_or_else(|| ApiError::internal(format!("payment {} has no intent", parent.id)))?;
        let done = self
            .timed(self.provider.refund(
                &intent,
                money::to_minor_unit(refund.amount, &refund.currency),
                &refund.key("refund"),
            ))
            .await?;
        let (booking, contact) = self.booking_and_contact(refund.booking_id).await?;
        let row = self
            .db
            .write(move |conn| {
                store::lock(conn, booking.id)?;
                let mut refund = store::get(conn, id)?.ok_or(ApiError::NotFound)?;
                if refund.status != PaymentStatus::Pending {
                    return Ok(refund);
                }
                refund.provider_ref = Some(done.id.clone());
                refund.updated_at = db::to_db(time::now());
                match done.state {
                    RefundState::Succeeded => {
                        refund_done(conn, &mut refund, &booking, contact.as_ref())?
                    }
                    RefundState::Pending => {
                        store::update(conn, &refund)?;
                    }
                    RefundState::Failed => {
                        refund.status = PaymentStatus::Failed;
                        refund.failure_message = Some("The provider could not refund it".into());
                        store::update(conn, &refund)?;
                    }
                }
                Ok(refund)
            })
            .await?;
        self.count(&row);
        Ok(())
    }

    /// Cancels an open intent, or releases an authorised deposit.
    async fn cancel(&self, id: PaymentId) -> Result<(), ApiError> {
        let Some(row) = self.record(id).await? else {
            return Ok(());
        };
        let Some(intent) = row.provider_ref.clone() else {
            return Ok(());
        };
        if !matches!(row.status, PaymentStatus::Pending | PaymentStatus::Authorized | PaymentStatus::Failed) {
            return Ok(());
        }
        match self
            .timed(self.provider.cancel(&intent, &row.key("cancel")))
            .await
        {
            Ok(intent) => self.apply_intent(&intent).await.map(drop),
            // Paid meanwhile: the success, when it is applied, refunds it.
            Err(ProviderError::Refused(_)) => {
                let intent = self.timed(self.provider.intent(&intent)).await?;
                self.apply_intent(&intent).await.map(drop)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Settles a returned booking from its deposit, then its saved card. Each step looks at
    /// what is already done, so running it again does nothing twice.
    async fn settle(&self, id: BookingId) -> Result<(), ApiError> {
        let (booking, contact) = self.booking_and_contact(id).await?;
        let owed: i64 = booking
            .lines()
            .iter()
            .filter(|l| matches!(l.kind, LineKind::LateFee | LineKind::ExtraKm | LineKind::Damage))
            .map(|l| l.amount_minor)
            .sum();
        let records = self.of_booking(id).await?;
        let mut covered = 0;
        if let Some(deposit) = records.iter().rev().find(|r| r.kind == PaymentKind::Deposit) {
            let deposit = match deposit.status {
                PaymentStatus::Authorized => self.use_deposit(deposit, owed).await?,
                _ => deposit.clone(),
            };
            covered = deposit.captured_amount;
        }
        let remainder = owed - covered;
        if remainder <= 0 {
            return Ok(());
        }
        let charge = records
            .iter()
            .find(|r| r.kind == PaymentKind::Charge && r.reason.as_deref() == Some("return"));
        let charge = match charge {
            Some(done) if done.status != PaymentStatus::Pending => return Ok(()),
            Some(pending) => pending.clone(),
            None => {
                let mut row = PaymentRow::new(
                    PaymentKind::Charge,
                    id,
                    booking.user_id,
                    remainder,
                    &booking.currency,
                    self.provider.name(),
                    db::to_db(time::now()),
                );
                row.reason = Some("return".into());
                let insert = row.clone();
                self.db
                    .write(move |conn| Ok(store::insert(conn, &insert)?))
                    .await?;
                row
            }
        };
        let customer = self.customer(booking.user_id).await?;
        let charged = match &booking.payment_method {
            None => Err(ProviderError::Declined(
                "No card is saved for this booking".into(),
            )),
            Some(card) => {
                let new = NewIntent {
                    amount: money::to_minor_unit(charge.amount, &charge.currency),
                    currency: &charge.currency,
                    customer: &customer,
                    capture: Capture::Automatic,
                    off_session: Some(card),
                    booking: id,
                };
                self.timed(self.provider.create_intent(new, &charge.key("create")))
                    .await
            }
        };
        let (status, reference, failure, captured) = match charged {
            Ok(intent) if intent.status == IntentStatus::Succeeded => (
                PaymentStatus::Succeeded,
                Some(intent.id),
                None,
                charge.amount,
            ),
            Ok(intent) => (PaymentStatus::Failed, Some(intent.id), intent.error, 0),
            Err(ProviderError::Declined(message)) => {
                (PaymentStatus::Failed, None, Some(message), 0)
            }
            Err(e) => return Err(e.into()),
        };
        let admins = if status == PaymentStatus::Failed {
            self.ports.users.admins().await?
        } else {
            Vec::new()
        };
        let row = self
            .db
            .write(move |conn| {
                store::lock(conn, id)?;
                let mut row = store::get(conn, charge.id)?.ok_or(ApiError::NotFound)?;
                if row.status != PaymentStatus::Pending {
                    return Ok(row);
                }
                row.status = status;
                row.provider_ref = reference.or(row.provider_ref);
                row.failure_message = failure;
                row.captured_amount = captured;
                row.updated_at = db::to_db(time::now());
                store::update(conn, &row)?;
                if status == PaymentStatus::Failed {
                    bookings::add_balance_due(conn, id, row.amount)?;
                    for (user, admin) in &admins {
                        queue(conn, balance_due(&booking, *user, admin, row.amount))?;
                    }
                } else if let Some(contact) = &contact {
                    queue(conn, notice(&booking, contact, Money::Charged(row.amount)))?;
                }
                Ok(row)
            })
            .await?;
        self.count(&row);
        Ok(())
    }

    /// Captures what the return added from an authorised deposit (up to its amount) and
    /// releases the rest; nothing owed releases it all.
    async fn use_deposit(&self, deposit: &PaymentRow, owed: i64) -> Result<PaymentRow, ApiError> {
        let intent = deposit
            .provider_ref
            .clone()
            .ok_or_else(|| ApiError::internal(format!("deposit {} has no intent", deposit.id)))?;
        let take = owed.min(deposit.amount);
        let answer = if take > 0 {
            self.timed(self.provider.capture(
                &intent,
                money::to_minor_unit(take, &deposit.currency),
                &deposit.key("capture"),
            ))
            .await
        } else {
            self.timed(self.provider.cancel(&intent, &deposit.key("release")))
                .await
        };
        let answer = match answer {
            Ok(answer) => answer,
            // Done already (an earlier try whose answer was lost, under a key since expired):
            // what the intent now is says what happened.
            Err(ProviderError::Refused(why)) => {
                let now = self.timed(self.provider.intent(&intent)).await?;
                if now.status == IntentStatus::RequiresCapture {
                    return Err(ProviderError::Refused(why).into());
                }
                now
            }
            Err(e) => return Err(e.into()),
        };
        self.apply_intent(&answer).await?;
        Ok(self.record(deposit.id).await?.unwrap_or_else(|| deposit.clone()))
    }

    /// Expires the unpaid bookings whose hold has run out: they hold nothing more, their
    /// renter is told, and their intents are cancelled at the provider.
    pub async fn expire_due(&self) -> Result<usize, ApiError> {
        let now = time::now();
        let due = self
            .db
            .run(move |conn| Ok(bookings::holds_due(conn, db::to_db(now), 100)?))
            .await?;
        let mut expired = 0;
        for booking in due {
            let contact = self.ports.users.contact(booking.user_id).await?;
            let car = self.ports.catalog.car(booking.car_id).await?;
            let done = self
                .db
                .write(move |conn| {
                    if bookings::expire(conn, booking.id, db::to_db(now))? == 0 {
                        return Ok(false);
                    }
                    for open in store::of_booking(conn, booking.id)?
                        .iter()
                        .filter(|r| r.status == PaymentStatus::Pending)
                    {
                        Call::Cancel { payment: open.id }.queue(conn)?;
                    }
                    if let (Some(car), Some(contact)) = (&car, &contact) {
                        queue(conn, message(&booking, car, contact, Notice::HoldExpired))?;
                    }
                    Ok(true)
                })
                .await?;
            expired += usize::from(done);
        }
        Ok(expired)
    }

    /// Asks the provider about intents and card setups still open after a while (a webhook
    /// may never come) and applies what it says, through the same path as webhooks. One
    /// record the provider cannot answer for does not hold up the others.
    pub async fn reconcile(&self) -> Result<usize, ApiError> {
        let before = db::to_db(
            time::now()
                - chrono::Duration::from_std(self.reconcile_after).unwrap_or(chrono::Duration::MAX),
        );
        let (open, setups) = self
            .db
            .run(move |conn| {
                Ok((
                    store::open_before(conn, before)?,
                    store::setups_open_before(conn, before)?,
                ))
            })
            .await?;
        let mut applied = 0;
        for row in open {
            let Some(reference) = &row.provider_ref else {
                continue;
            };
            let asked = async {
                let intent = self.timed(self.provider.intent(reference)).await?;
                self.apply_intent(&intent).await
            };
            match asked.await {
                Ok(now) => applied += usize::from(now.is_some_and(|r| r.status != row.status)),
                Err(e) => tracing::warn!(error = %e, payment = %row.id, "payments: cannot reconcile"),
            }
        }
        for row in setups {
            let Some(reference) = &row.provider_ref else {
                continue;
            };
            let asked = async {
                let setup = self.timed(self.provider.setup(reference)).await?;
                self.apply_setup(&setup).await
            };
            match asked.await {
                Ok(now) => applied += usize::from(now.is_some_and(|r| r.status != row.status)),
                Err(e) => tracing::warn!(error = %e, setup = %row.id, "payments: cannot reconcile"),
            }
        }
        Ok(applied)
    }

    /// Forgets webhook events older than a week: Stripe retries an event for three days, so
    /// no replay of them can come any more.
    pub async fn forget_old_events(&self) -> Result<usize, ApiError> {
        let before = db::to_db(time::now() - chrono::Duration::days(7));
        self.db
            .write(move |conn| Ok(store::forget_events(conn, before)?))
            .await
    }

    /// Counts a webhook by its event type and what came of it.
    pub fn count_webhook(&self, kind: &str, result: &str) {
        self.metrics
            .webhooks
            .with_label_values(&[kind, result])
            .inc();
    }

    /// Applies a provider's notification once per event id: a replay changes nothing.
    /// Applying is idempotent by itself (states only move forward), so the event is
    /// recorded after it is applied: a crash in between replays harmlessly.
    pub async fn notify(&self, event: &str, kind: &str, what: Notification) -> Result<(), ApiError> {
        let id = event.to_owned();
        if self.db.run(move |conn| Ok(store::event_seen(conn, &id)?)).await? {
            self.count_webhook(kind, "duplicate");
            return Ok(());
        }
        let applied = match what {
            Notification::Intent(intent) => self.apply_intent(&intent).await?.is_some(),
            Notification::Setup(setup) => self.apply_setup(&setup).await?.is_some(),
            Notification::Refunded { intent, refunded } => {
                self.apply_refunded(&intent, refunded).await?
            }
            Notification::Disputed { intent, reason } => self.dispute(&intent, &reason).await?,
            Notification::Other => false,
        };
        let (id, event_kind) = (event.to_owned(), kind.to_owned());
        self.db
            .write(move |conn| {
                store::keep_event(conn, &id, &event_kind, db::to_db(time::now()))?;
                Ok(())
            })
            .await?;
        self.count_webhook(kind, if applied { "applied" } else { "ignored" });
        Ok(())
    }

    /// The provider says `refunded` (minor units) of an intent's money went back: our
    /// pending refunds it covers are done, and what it gave back without us (from its
    /// dashboard) is recorded, so that the ledger still matches the provider. A deposit's
    /// released remainder shows at the provider as refunded, and is not a refund here.
    async fn apply_refunded(&self, intent: &str, refunded: i64) -> Result<bool, ApiError> {
        let (provider, reference) = (self.provider.name(), intent.to_owned());
        let Some(paid) = self
            .db
            .run(move |conn| Ok(store::by_ref(conn, provider, &reference)?))
            .await?
            .filter(|p| matches!(p.kind, PaymentKind::Rental | PaymentKind::Charge))
        else {
            return Ok(false);
        };
        let (booking, contact) = self.booking_and_contact(paid.booking_id).await?;
        let refunded = money::from_minor_unit(refunded, &paid.currency);
        self.db
            .write(move |conn| {
                store::lock(conn, paid.booking_id)?;
                let current = |conn: &mut DbConn| {
                    store::get(conn, paid.id)?.ok_or(ApiError::NotFound)
                };
                let mut changed = false;
                for mut refund in store::refunds_of(conn, paid.id)?
                    .into_iter()
                    .filter(|r| r.status == PaymentStatus::Pending)
                {
                    if current(conn)?.refunded_amount + refund.amount > refunded {
                        break;
                    }
                    refund_done(conn, &mut refund, &booking, contact.as_ref())?;
                    changed = true;
                }
                let parent = current(conn)?;
                if refunded > parent.refunded_amount {
                    let mut refund = PaymentRow::new(
                        PaymentKind::Refund,
                        parent.booking_id,
                        parent.user_id,
                        refunded - parent.refunded_amount,
                        &parent.currency,
                        &parent.provider,
                        db::to_db(time::now()),
                    );
                    refund.parent_id = Some(parent.id);
                    refund.reason = Some("refunded at the provider".into());
                    store::insert(conn, &refund)?;
                    refund_done(conn, &mut refund, &booking, contact.as_ref())?;
                    changed = true;
                }
                Ok(changed)
            })
            .await
    }

    /// The cardholder disputes a payment with their bank: the booking says so and every
    /// admin is told, once.
    async fn dispute(&self, intent: &str, reason: &str) -> Result<bool, ApiError> {
        let (provider, reference) = (self.provider.name(), intent.to_owned());
        let Some(paid) = self
            .db
            .run(move |conn| Ok(store::by_ref(conn, provider, &reference)?))
            .await?
        else {
            return Ok(false);
        };
        let booking = self.booking(paid.booking_id).await?;
        let admins = self.ports.users.admins().await?;
        let reason = reason.to_owned();
        self.db
            .write(move |conn| {
                if bookings::set_disputed(conn, booking.id)? == 0 {
                    return Ok(false);
                }
                for (user, admin) in &admins {
                    queue(conn, disputed(&booking, &paid, *user, admin, &reason))?;
                }
                Ok(true)
            })
            .await
    }

    /// Authorises anew the deposits of rentals out longer than an authorisation lasts, then
    /// releases the old hold; the new record names the one it replaces.
    pub async fn reauthorize_deposits(&self) -> Result<usize, ApiError> {
        let before = db::to_db(time::now() - self.reauthorize_after);
        let old = self
            .db
            .run(move |conn| Ok(store::deposits_authorized_before(conn, before)?))
            .await?;
        let mut renewed = 0;
        for deposit in old {
            let booking = self.booking(deposit.booking_id).await?;
            let Some(card) = booking.payment_method.clone() else {
                continue;
            };
            if booking.status != Status::Active {
                continue;
            }
            match self
                .hold_deposit(&booking, deposit.amount, &card, Some(deposit.id))
                .await
            {
                Ok(new) => {
                    let (old, booking) = (deposit.id, booking.id);
                    self.db
                        .write(move |conn| {
                            Call::Cancel { payment: old }.queue(conn)?;
                            // Returned meanwhile: its settlement used the old hold, so the
                            // new one is let go too.
                            let now = bookings::get(conn, booking)?.ok_or(ApiError::NotFound)?;
                            if now.status != Status::Active {
                                Call::Cancel { payment: new.id }.queue(conn)?;
                            }
                            Ok(())
                        })
                        .await?;
                    renewed += 1;
                }
                Err(e) => tracing::warn!(error = %e, deposit = %deposit.id, "deposit not re-authorised"),
            }
        }
        Ok(renewed)
    }

    /// Every record the filters let through, newest first.
    pub async fn list(&self, filter: Filter, page: PageRequest) -> Result<Paginated<super::model::Payment>, ApiError> {
        let (rows, total) = self
            .db
            .run(move |conn| Ok(store::list(conn, &filter, page.offset(), page.limit())?))
            .await?;
        Ok(page.wrap(rows.iter().map(PaymentRow::to_api).collect(), total))
    }

    /// What the records created in `[from, to)` add up to, by currency.
    pub async fn summary(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Totals>, ApiError> {
        let rows = self
            .db
            .run(move |conn| Ok(store::created_between(conn, db::to_db(from), db::to_db(to))?))
            .await?;
        let mut sums: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
        for row in &rows {
            let entry = sums.entry(row.currency.to_ascii_uppercase()).or_default();
            match row.kind {
                PaymentKind::Refund if row.status == PaymentStatus::Succeeded => entry.1 += row.amount,
                PaymentKind::Refund => {}
                PaymentKind::Deposit if row.status == PaymentStatus::Authorized => entry.2 += row.amount,
                _ => entry.0 += row.captured_amount,
            }
        }
        Ok(sums
            .into_iter()
            .map(|(currency, (captured, refunded, held))| {
                (
                    currency,
                    Totals {
                        captured: money::to_major(captured),
                        refunded: money::to_major(refunded),
                        net: money::to_major(captured - refunded),
                        held_deposits: money::to_major(held),
                    },
                )
            })
            .collect())
    }
}

/// `percent` of `amount` in hundredths, rounded half up to the hundredth.
fn percent_half_up(amount: i64, percent: i64) -> i64 {
    (amount * percent + 50) / 100
}

fn from_db(t: chrono::NaiveDateTime) -> DateTime<Utc> {
    db::from_db(t)
}

/// The state a record moves to on this news of its intent, if it moves.
fn next_state(row: &PaymentRow, intent: &Intent) -> Option<PaymentStatus> {
    use IntentStatus as I;
    use PaymentKind as K;
    use PaymentStatus as S;
    let next = match (row.kind, intent.status) {
        (K::Refund, _) => return None,
        (K::Rental | K::Charge, I::Succeeded) => S::Succeeded,
        (K::Deposit, I::Succeeded) if intent.amount_received < intent.amount => S::PartiallyCaptured,
        (K::Deposit, I::Succeeded) => S::Captured,
        (K::Deposit, I::RequiresCapture) => S::Authorized,
        (K::Deposit, I::Canceled) => S::Released,
        (_, I::Canceled) => S::Canceled,
        (_, I::RequiresPaymentMethod) if intent.error.is_some() => S::Failed,
        _ => return None,
    };
    let forward = next.rank() > row.status.rank()
        || (next == S::Failed
            && row.status == S::Failed
            && intent.error != row.failure_message);
    forward.then_some(next)
}

/// A record moved to `next`, as `intent` says: when, and what was taken.
fn advance(row: &mut PaymentRow, next: PaymentStatus, intent: &Intent) {
    row.status = next;
    row.updated_at = db::to_db(time::now());
    if next == PaymentStatus::Failed {
        row.failure_message = intent.error.clone();
    }
    if matches!(
        next,
        PaymentStatus::Succeeded | PaymentStatus::Captured | PaymentStatus::PartiallyCaptured
    ) {
        row.captured_amount =
            money::from_minor_unit(intent.amount_received, &row.currency).min(row.amount);
    }
}

/// What a record's new state does to its booking, in the same transaction; answers whether
/// the renter is told of it ([`told`] says what).
fn effects(
    conn: &mut DbConn,
    row: &PaymentRow,
    intent: &Intent,
    booking: &BookingRow,
) -> Result<bool, ApiError> {
    let now = time::now();
    match (row.kind, row.status) {
        (PaymentKind::Rental, PaymentStatus::Succeeded) => {
            let holding = booking.status_at(now) == Status::PendingPayment;
            if holding
                && bookings::confirm_paid(
                    conn,
                    booking.id,
                    intent.payment_method.as_deref(),
                    db::to_db(now),
                )? > 0
            {
                return Ok(true);
            }
            // Paid for a booking that no longer waits for it: given back at once.
            let mut refund = PaymentRow::new(
                PaymentKind::Refund,
                booking.id,
                booking.user_id,
                row.captured_amount,
                &row.currency,
                &row.provider,
                db::to_db(now),
            );
            refund.parent_id = Some(row.id);
            refund.reason = Some(format!("paid while {}", booking.status_at(now).name()));
            store::insert(conn, &refund)?;
            Call::Refund { payment: refund.id }.queue(conn)?;
            Ok(false)
        }
        (PaymentKind::Charge, PaymentStatus::Succeeded) => {
            bookings::add_balance_due(conn, booking.id, -row.amount)?;
            Ok(false)
        }
        _ => Ok(true),
    }
}

/// What the renter is told of a record's new state (a paid rental: its booking confirmed,
/// as well as the payment).
fn told(
    row: &PaymentRow,
    booking: &BookingRow,
    car: Option<&CarSummary>,
    contact: &Contact,
) -> Vec<OutgoingMessage> {
    let money = match (row.kind, row.status) {
        (PaymentKind::Rental, PaymentStatus::Succeeded) => Money::Received(row.captured_amount),
        (PaymentKind::Rental, PaymentStatus::Failed) => Money::Declined(row.failure_message.clone()),
        (PaymentKind::Deposit, PaymentStatus::Captured | PaymentStatus::PartiallyCaptured) => {
            Money::DepositCaptured(row.captured_amount)
        }
        (PaymentKind::Deposit, PaymentStatus::Released) => Money::DepositReleased(row.amount),
        _ => return Vec::new(),
    };
    let mut messages = Vec::new();
    if let (Money::Received(_), Some(car)) = (&money, car) {
        let confirmed = BookingRow {
            status: Status::Confirmed,
            hold_expires_at: None,
            ..booking.clone()
        };
        messages.push(message(&confirmed, car, contact, Notice::Confirmed));
    }
    messages.push(notice(booking, contact, money));
    messages
}

/// Messages are rows of the caller's transaction (the `Notifier` every process has).
fn queue(conn: &mut DbConn, message: OutgoingMessage) -> Result<(), ApiError> {
    Notifier::queue(&MessageQueue, conn, message)
}

/// What moved, as the renter is told.
enum Money {
    Received(i64),
    Declined(Option<String>),
    Refunded(i64),
    Charged(i64),
    DepositCaptured(i64),
    DepositReleased(i64),
}

fn notice(booking: &BookingRow, to: &Contact, what: Money) -> OutgoingMessage {
    let (kind, amount) = match &what {
        Money::Received(m) | Money::Charged(m) => ("payment_received", Some(*m)),
        Money::Declined(_) => ("payment_failed", None),
        Money::Refunded(m) => ("refund_issued", Some(*m)),
        Money::DepositCaptured(m) => ("deposit_captured", Some(*m)),
        Money::DepositReleased(m) => ("deposit_released", Some(*m)),
    };
    let mut message = OutgoingMessage::new(booking.user_id, kind, to)
        .with("bookingId", booking.id.to_string())
        .with("url", format!("/bookings/{}", booking.id))
        .with("currency", booking.currency.clone())
        .with("charged", matches!(what, Money::Charged(_)));
    if let Some(amount) = amount {
        message = message.with("amount", amount);
    }
    if let Money::Declined(why) = what {
        message = message.with("reason", why.unwrap_or_else(|| "no reason given".into()));
    }
    message
}

/// An admin told that a booking owes what its card would not pay.
fn balance_due(booking: &BookingRow, admin: UserId, to: &Contact, amount: i64) -> OutgoingMessage {
    OutgoingMessage::new(admin, "balance_due", to)
        .with("bookingId", booking.id.to_string())
        .with("amount", amount)
        .with("currency", booking.currency.clone())
}

/// Within a transaction: a refund the provider made is taken off its payment, and the
/// renter told.
fn refund_done(
    conn: &mut DbConn,
    refund: &mut PaymentRow,
    booking: &BookingRow,
    contact: Option<&Contact>,
) -> Result<(), ApiError> {
    refund.status = PaymentStatus::Succeeded;
    refund.updated_at = db::to_db(time::now());
    store::update(conn, refund)?;
    let parent = refund
        .parent_id
        .ok_or_else(|| ApiError::internal(format!("refund {} has no payment", refund.id)))?;
    let mut parent = store::get(conn, parent)?.ok_or(ApiError::NotFound)?;
    parent.refunded_amount += refund.amount;
    if matches!(parent.kind, PaymentKind::Rental | PaymentKind::Charge) {
        parent.status = if parent.refunded_amount >= parent.captured_amount {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::PartiallyRefunded
        };
    }
    parent.updated_at = refund.updated_at;
    store::update(conn, &parent)?;
    if let Some(contact) = contact {
        queue(conn, notice(booking, contact, Money::Refunded(refund.amount)))?;
    }
    Ok(())
}

/// An admin told that a renter disputes a payment with their bank.
fn disputed(
    booking: &BookingRow,
    paid: &PaymentRow,
    admin: UserId,
    to: &Contact,
    reason: &str,
) -> OutgoingMessage {
    OutgoingMessage::new(admin, "payment_disputed", to)
        .with("bookingId", booking.id.to_string())
        .with("paymentKind", paid.kind.name())
        .with("providerRef", paid.provider_ref.clone().unwrap_or_else(|| "-".into()))
        .with("amount", paid.captured_amount)
        .with("currency", paid.currency.clone())
        .with("reason", reason)
}

/// The `payments` entry of `/health/ready`: whether the provider answers (`none` and the
/// mock always do). A provider down degrades; it never unreadies the process.
pub struct Readiness(pub Option<Arc<dyn PaymentProvider>>);

impl ReadinessCheck for Readiness {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let Some(provider) = &self.0 else {
                return (json!({"status": "up", "provider": "none"}), CheckState::Up);
            };
            crate::ops::provider_check(provider.name(), provider.ping()).await
        })
    }
}

/// Makes the provider calls changes queued: at least once, with backoff, each under its
/// idempotency key.
pub fn spawn_call_worker(
    db: Db,
    payments: Arc<Payments>,
    stop: Stop,
) -> tokio::task::JoinHandle<()> {
    // Stripe replays a 500 to the same idempotency key for 24 hours: retries go on for
    // longer than that (about two days), so a call is never given up before its key is free.
    let policy = Policy {
        max_attempts: 300,
        backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(600),
        lease: Duration::from_secs(120),
        poll: Duration::from_millis(250),
        batch: 10,
        keep_done: true,
    };
    tokio::spawn(outbox::run_worker(
        db,
        TOPIC,
        policy,
        stop,
        move |jobs| {
            let payments = payments.clone();
            async move {
                let mut outcomes = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    outcomes.push(payments.run(job).await);
                }
                outcomes
            }
        },
        |_| {},
    ))
}

/// Every second: expires the unpaid holds that ran out; every `reconcile_every`: asks the
/// provider about intents still open, and re-authorises deposits about to lapse.
pub fn spawn_clock(
    payments: Arc<Payments>,
    reconcile_every: Duration,
    mut stop: Stop,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut next_reconcile = tokio::time::Instant::now() + reconcile_every;
        while !stop.requested() {
            if let Err(e) = payments.expire_due().await {
                tracing::warn!(error = %e, "payments: cannot expire unpaid holds");
            }
            if tokio::time::Instant::now() >= next_reconcile {
                next_reconcile += reconcile_every;
                if let Err(e) = payments.reconcile().await {
                    tracing::warn!(error = %e, "payments: reconciliation failed");
                }
                if let Err(e) = payments.reauthorize_deposits().await {
                    tracing::warn!(error = %e, "payments: re-authorising deposits failed");
                }
                if let Err(e) = payments.forget_old_events().await {
                    tracing::warn!(error = %e, "payments: cannot forget old webhook events");
                }
            }
            stop.sleep(Duration::from_secs(1)).await;
        }
    })
}
