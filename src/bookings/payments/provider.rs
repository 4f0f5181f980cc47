//! The payment port: what bookings asks of a payment provider, whichever it is. Amounts are
//! in the currency's minor unit, as providers count them ([`crate::money::to_minor_unit`]).
//! Every call that creates or changes money carries an idempotency key
//! ([`super::model::PaymentRow::key`]): a retry of the same attempt replays.

use async_trait::async_trait;

use crate::error::ApiError;
use crate::ids::{BookingId, UserId};

/// Where a payment intent stands at the provider (Stripe's states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    /// Authorised, waiting to be captured (a deposit).
    RequiresCapture,
    Canceled,
    Succeeded,
}

impl IntentStatus {
    /// Stripe's name of it.
    pub fn parse(name: &str) -> Option<IntentStatus> {
        Some(match name {
            "requires_payment_method" => IntentStatus::RequiresPaymentMethod,
            "requires_confirmation" => IntentStatus::RequiresConfirmation,
            "requires_action" => IntentStatus::RequiresAction,
            "processing" => IntentStatus::Processing,
            "requires_capture" => IntentStatus::RequiresCapture,
            "canceled" => IntentStatus::Canceled,
            "succeeded" => IntentStatus::Succeeded,
            _ => return None,
        })
    }

    /// Still waiting for the customer or the provider.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            IntentStatus::RequiresPaymentMethod
                | IntentStatus::RequiresConfirmation
                | IntentStatus::RequiresAction
                | IntentStatus::Processing
        )
    }
}

/// A payment intent as the provider answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub id: String,
    pub status: IntentStatus,
    /// What it is for, and what has been captured of it (minor units).
    pub amount: i64,
    pub amount_received: i64,
    pub client_secret: Option<String>,
    /// The card it was (or is to be) paid with.
    pub payment_method: Option<String>,
    /// Why the last attempt failed (`last_payment_error.message`).
    pub error: Option<String>,
}

/// A card being saved (a setup intent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupIntent {
    pub id: String,
    pub status: IntentStatus,
    pub client_secret: Option<String>,
    pub payment_method: Option<String>,
}

/// Money given back at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    pub id: String,
    pub state: RefundState,
}

/// Where a refund stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundState {
    /// On its way (some payment methods take days).
    Pending,
    Succeeded,
    /// Refused or cancelled: nothing went back.
    Failed,
}

/// What a provider's notification (a webhook) says, once verified and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// A payment intent changed: paid, failed, cancelled, authorised or captured.
    Intent(Intent),
    /// A card was saved.
    Setup(SetupIntent),
    /// Money of the intent went back: `refunded` is the total given back so far (minor
    /// units), whoever asked for it.
    Refunded { intent: String, refunded: i64 },
    /// The cardholder disputes the intent's payment with their bank.
    Disputed { intent: String, reason: String },
    /// Nothing this server acts on.
    Other,
}

/// When an intent's money is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// As soon as it is confirmed.
    Automatic,
    /// Held on the card until captured (a deposit).
    Manual,
}

/// A payment intent to create.
#[derive(Debug, Clone)]
pub struct NewIntent<'a> {
    pub amount: i64,
    pub currency: &'a str,
    pub customer: &'a str,
    pub capture: Capture,
    /// Confirm it at once with this saved card, the customer not present (deposits and
    /// charges); `None`: the customer confirms it (with the client secret) and the card is
    /// saved for later charges.
    pub off_session: Option<&'a str>,
    pub booking: BookingId,
}

/// Why a call to the provider failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The customer's card was declined: their business (402).
    #[error("declined: {0}")]
    Declined(String),
    /// The provider is down, failing or too slow (503).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request for a reason that is not the customer's (502).
    #[error("refused: {0}")]
    Refused(String),
}

impl From<ProviderError> for ApiError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Declined(message) => ApiError::PaymentRequired(message),
            ProviderError::Unavailable(reason) => {
                tracing::warn!(%reason, "payment provider unavailable");
                ApiError::PaymentUnavailable
            }
            ProviderError::Refused(reason) => {
                tracing::error!(%reason, "payment provider refused a request");
                ApiError::PaymentProviderError
            }
        }
    }
}

/// A payment provider: the mock or Stripe. Domain code never knows which.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// What payment records name it (`mock`, `stripe`).
    fn name(&self) -> &'static str;
    /// A customer for the user, whose saved cards later charges use.
    async fn create_customer(&self, user: UserId, key: &str) -> Result<String, ProviderError>;
    async fn create_intent(
        &self,
        new: NewIntent<'_>,
        key: &str,
    ) -> Result<Intent, ProviderError>;
    async fn intent(&self, id: &str) -> Result<Intent, ProviderError>;
    /// Takes `amount` of an authorised intent; the rest of the hold is released.
    async fn capture(&self, id: &str, amount: i64, key: &str) -> Result<Intent, ProviderError>;
    /// Cancels an intent not yet paid, or releases an authorisation.
    async fn cancel(&self, id: &str, key: &str) -> Result<Intent, ProviderError>;
    async fn refund(
        &self,
        intent: &str,
        amount: i64,
        key: &str,
    ) -> Result<ProviderRefund, ProviderError>;
    async fn create_setup(&self, customer: &str, key: &str) -> Result<SetupIntent, ProviderError>;
    async fn setup(&self, id: &str) -> Result<SetupIntent, ProviderError>;
    /// Whether it answers (readiness).
    async fn ping(&self) -> Result<(), ProviderError>;
}
