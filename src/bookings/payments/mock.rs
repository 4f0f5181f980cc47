//! `PAYMENT_PROVIDER=mock`: an in-process processor with Stripe's states and the test cards
//! of API.md, for development and tests. Nothing leaves the process; the same calls give the
//! same answers (ids are counted), and an idempotency key replays its first answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpResponse};
use async_trait::async_trait;
use serde::Deserialize;
use utoipa::ToSchema;

use super::model::{Payment, Setup};
use super::provider::{
    Capture, Intent, IntentStatus, NewIntent, PaymentProvider, ProviderError, ProviderRefund,
    RefundState, SetupIntent,
};
use super::{Built, Provider};
use crate::bookings::BookingsService;
use crate::config::PaymentSettings;
use crate::error::{ApiError, FieldError};
use crate::http::auth::AuthUser;
use crate::http::{parse_id, Json};
use crate::ids::{PaymentId, SetupId, UserId};

/// `PAYMENT_PROVIDER=mock`.
pub const PROVIDER: Provider = Provider {
    name: "mock",
    paths: &[CONFIRM],
    build,
};

const CONFIRM: &str = "/payments/mock/{id}/confirm";

fn build(_: &PaymentSettings) -> anyhow::Result<Built> {
    let mock = Arc::new(Mock::default());
    let data = web::Data::from(mock.clone());
    Ok(Built {
        port: mock,
        routes: Arc::new(move |cfg| {
            cfg.app_data(data.clone()).service(
                web::resource(CONFIRM).route(web::post().to(confirm)),
            );
        }),
    })
}

/// `POST /payments/mock/{id}/confirm`: what a browser would confirm with.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MockConfirm {
    #[schema(required = true, schema_with = card_schema)]
    pub card: Option<String>,
}

/// Confirm a payment, or a card being saved, with one of the mock's test cards: what a
/// browser does with the client secret (the booking's owner or an admin; only with
/// `PAYMENT_PROVIDER=mock`).
#[utoipa::path(post, path = "/payments/mock/{id}/confirm", tag = "payments", operation_id = "confirmMockPayment",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "A payment's id, or a card setup's")),
    request_body = MockConfirm,
    responses((status = 200, body = Payment, description = "Paid (a setup answers the setup)"),
              (status = 402, body = crate::error::ErrorBody, description = "Declined: the provider's message")))]
pub async fn confirm(
    bookings: web::Data<BookingsService>,
    mock: web::Data<Mock>,
    user: AuthUser,
    id: web::Path<String>,
    Json(body): Json<MockConfirm>,
) -> Result<HttpResponse, ApiError> {
    let payments = super::payments(&bookings)?;
    let card = body
        .card
        .ok_or_else(|| ApiError::field("card", "is required"))?;
    let unknown = || {
        let known: Vec<&str> = CARDS.iter().map(|(n, _)| *n).collect();
        ApiError::Validation(vec![FieldError::new(
            "card",
            format!("must be one of the test cards {}", known.join(", ")),
        )])
    };
    if let Some((record, booking)) = payments.record_with_booking(parse_id::<PaymentId>(&id)?).await? {
        // The record says whose it is: what the booking's visibility would say.
        if !(user.is_admin() || record.user_id == user.id) {
            return Err(ApiError::NotFound);
        }
        let Some(reference) = record.provider_ref.clone() else {
            return Err(ApiError::conflict("The payment is not open at the provider"));
        };
        let outcome = mock.confirm(&reference, &card).ok_or_else(unknown)?;
        let intent = mock.intent(&reference).await?;
        let applied = payments.apply_to(record, booking, &intent).await?;
        return match outcome {
            Ok(_) => Ok(HttpResponse::Ok().json(applied.to_api())),
            Err(e) => Err(e.into()),
        };
    }
    let setup = payments
        .setup_record(parse_id::<SetupId>(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    bookings.visible_row(user, setup.booking_id).await?;
    let reference = setup.provider_ref.clone().unwrap_or_default();
    match mock.confirm(&reference, &card).ok_or_else(unknown)? {
        Ok(Confirmed::Setup(saved)) => {
            payments.apply_setup(&saved).await?;
            Ok(HttpResponse::Ok().json(Setup {
                id: setup.id,
                client_secret: setup.client_secret,
            }))
        }
        Ok(Confirmed::Intent) => Err(ApiError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// A test card as the mock treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    /// Pays, now and later.
    Good,
    /// Pays when the customer is there; every later charge without them is declined.
    DeclinesLater,
}

/// The document's schema of a test card: one of [`CARDS`].
pub fn card_schema() -> utoipa::openapi::schema::Schema {
    let numbers: Vec<&str> = CARDS.iter().map(|(number, _)| *number).collect();
    crate::http::schema::exact_schema(
        &numbers,
        "One of the mock's test cards: `4242424242424242` succeeds, `4000000000000002` is \
         declined, `4000000000009995` is declined for insufficient funds, `4000000000000341` \
         succeeds but declines every later charge made without the customer.",
    )
}

/// The cards the mock knows: number, what it does, and the decline message when it declines
/// at once.
const CARDS: &[(&str, Result<Card, &str>)] = &[
    ("4242424242424242", Ok(Card::Good)),
    ("4000000000000002", Err("Your card was declined.")),
    ("4000000000009995", Err("Your card has insufficient funds.")),
    ("4000000000000341", Ok(Card::DeclinesLater)),
];

#[derive(Debug)]
struct MockIntent {
    intent: Intent,
    capture: Capture,
}

#[derive(Debug, Default)]
struct State {
    count: u64,
    intents: HashMap<String, MockIntent>,
    setups: HashMap<String, SetupIntent>,
    /// Saved cards by payment method id.
    cards: HashMap<String, Card>,
    /// First answers by idempotency key.
    replies: HashMap<String, Reply>,
}

#[derive(Debug, Clone)]
enum Reply {
    Intent(Result<Intent, ProviderError>),
    Setup(Result<SetupIntent, ProviderError>),
    Refund(Result<ProviderRefund, ProviderError>),
    Customer(String),
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.count += 1;
        format!("{prefix}_mock_{:06}", self.count)
    }
}

#[derive(Debug, Default)]
pub struct Mock {
    state: Mutex<State>,
}

/// What the browser's confirmation did.
pub enum Confirmed {
    Intent,
    Setup(SetupIntent),
}

impl Mock {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a browser does with a client secret: confirms the intent (or the setup) with a
    /// test card. A declined card leaves the intent waiting for another (its error set) and
    /// is answered as [`ProviderError::Declined`]; an unknown number is `None`.
    pub fn confirm(&self, provider_ref: &str, number: &str) -> Option<Result<Confirmed, ProviderError>> {
        let card = CARDS.iter().find(|(n, _)| *n == number)?.1;
        let mut state = self.state();
        let method = match card {
            Ok(kind) => {
                let pm = state.id("pm");
                state.cards.insert(pm.clone(), kind);
                Ok(pm)
            }
            Err(message) => Err(message.to_owned()),
        };
        if let Some(setup) = state.setups.get_mut(provider_ref) {
            return Some(match method {
                Ok(pm) => {
                    setup.status = IntentStatus::Succeeded;
                    setup.payment_method = Some(pm);
                    Ok(Confirmed::Setup(setup.clone()))
                }
                Err(message) => Err(ProviderError::Declined(message)),
            });
        }
        let entry = state.intents.get_mut(provider_ref)?;
        if !matches!(
            entry.intent.status,
            IntentStatus::RequiresPaymentMethod | IntentStatus::RequiresConfirmation
        ) {
            return Some(Ok(Confirmed::Intent));
        }
        Some(match method {
            Ok(pm) => {
                entry.intent.payment_method = Some(pm);
                entry.intent.error = None;
                match entry.capture {
                    Capture::Automatic => {
                        entry.intent.status = IntentStatus::Succeeded;
                        entry.intent.amount_received = entry.intent.amount;
                    }
                    Capture::Manual => entry.intent.status = IntentStatus::RequiresCapture,
                }
                Ok(Confirmed::Intent)
            }
            Err(message) => {
                entry.intent.status = IntentStatus::RequiresPaymentMethod;
                entry.intent.error = Some(message.clone());
                Err(ProviderError::Declined(message))
            }
        })
    }

    /// The first answer to `key`, or `make`'s, kept.
    fn once(&self, key: &str, make: impl FnOnce(&mut State) -> Reply) -> Reply {
        let mut state = self.state();
        if let Some(reply) = state.replies.get(key) {
            return reply.clone();
        }
        let reply = make(&mut state);
        state.replies.insert(key.to_owned(), reply.clone());
        reply
    }
}

fn unexpected<T>(what: &str) -> Result<T, ProviderError> {
    Err(ProviderError::Refused(format!(
        "an idempotency key was reused for another call ({what})"
    )))
}

fn no_such(id: &str) -> ProviderError {
    ProviderError::Refused(format!("No such object: '{id}'"))
}

#[async_trait]
impl PaymentProvider for Mock {
    fn name(&self) -> &'static str {
        "mock"
    }

    async fn create_customer(&self, _user: UserId, key: &str) -> Result<String, ProviderError> {
        match self.once(key, |s| Reply::Customer(s.id("cus"))) {
            Reply::Customer(id) => Ok(id),
            _ => unexpected("customer"),
        }
    }

    async fn create_intent(&self, new: NewIntent<'_>, key: &str) -> Result<Intent, ProviderError> {
        let reply = self.once(key, |s| {
            let id = s.id("pi");
            let mut intent = Intent {
                client_secret: Some(format!("{id}_secret_{:06}", s.count)),
                id: id.clone(),
                status: IntentStatus::RequiresPaymentMethod,
                amount: new.amount,
                amount_received: 0,
                payment_method: None,
                error: None,
            };
            let outcome = match new.off_session {
                None => Ok(()),
                Some(pm) => match s.cards.get(pm) {
                    Some(Card::Good) => {
                        intent.payment_method = Some(pm.to_owned());
                        match new.capture {
                            Capture::Automatic => {
                                intent.status = IntentStatus::Succeeded;
                                intent.amount_received = new.amount;
                            }
                            Capture::Manual => intent.status = IntentStatus::RequiresCapture,
                        }
                        Ok(())
                    }
                    Some(Card::DeclinesLater) => {
                        intent.error = Some("Your card was declined.".into());
                        Err(ProviderError::Declined("Your card was declined.".into()))
                    }
                    None => Err(no_such(pm)),
                },
            };
            s.intents.insert(
                id,
                MockIntent {
                    intent: intent.clone(),
                    capture: new.capture,
                },
            );
            Reply::Intent(outcome.map(|()| intent))
        });
        match reply {
            Reply::Intent(intent) => intent,
            _ => unexpected("intent"),
        }
    }

    async fn intent(&self, id: &str) -> Result<Intent, ProviderError> {
        let state = self.state();
        state
            .intents
            .get(id)
            .map(|i| i.intent.clone())
            .ok_or_else(|| no_such(id))
    }

    async fn capture(&self, id: &str, amount: i64, key: &str) -> Result<Intent, ProviderError> {
        let reply = self.once(key, |s| {
            Reply::Intent(match s.intents.get_mut(id) {
                None => Err(no_such(id)),
                Some(i) if i.intent.status != IntentStatus::RequiresCapture => {
                    Err(ProviderError::Refused(format!(
                        "This PaymentIntent could not be captured because it has a status of {:?}.",
                        i.intent.status
                    )))
                }
                Some(i) if amount > i.intent.amount => Err(ProviderError::Refused(
                    "The amount to capture is more than what was authorised.".into(),
                )),
                Some(i) => {
                    i.intent.status = IntentStatus::Succeeded;
                    i.intent.amount_received = amount;
                    Ok(i.intent.clone())
                }
            })
        });
        match reply {
            Reply::Intent(intent) => intent,
            _ => unexpected("capture"),
        }
    }

    async fn cancel(&self, id: &str, key: &str) -> Result<Intent, ProviderError> {
        let reply = self.once(key, |s| {
            Reply::Intent(match s.intents.get_mut(id) {
                None => Err(no_such(id)),
                Some(i) if i.intent.status == IntentStatus::Succeeded => {
                    Err(ProviderError::Refused(
                        "You cannot cancel this PaymentIntent because it has a status of succeeded."
                            .into(),
                    ))
                }
                Some(i) => {
                    i.intent.status = IntentStatus::Canceled;
                    Ok(i.intent.clone())
                }
            })
        });
        match reply {
            Reply::Intent(intent) => intent,
            _ => unexpected("cancel"),
        }
    }

    async fn refund(
        &self,
        intent: &str,
        amount: i64,
        key: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        let reply = self.once(key, |s| {
            let paid = s
                .intents
                .get(intent)
                .filter(|i| i.intent.status == IntentStatus::Succeeded)
                .map(|i| i.intent.amount_received);
            Reply::Refund(match paid {
                None => Err(no_such(intent)),
                Some(paid) if amount > paid => Err(ProviderError::Refused(
                    "Refund amount is greater than what was charged.".into(),
                )),
                Some(_) => Ok(ProviderRefund {
                    id: s.id("re"),
                    state: RefundState::Succeeded,
                }),
            })
        });
        match reply {
            Reply::Refund(refund) => refund,
            _ => unexpected("refund"),
        }
    }

    async fn create_setup(&self, _customer: &str, key: &str) -> Result<SetupIntent, ProviderError> {
        let reply = self.once(key, |s| {
            let id = s.id("seti");
            let setup = SetupIntent {
                client_secret: Some(format!("{id}_secret_{:06}", s.count)),
                id: id.clone(),
                status: IntentStatus::RequiresPaymentMethod,
                payment_method: None,
            };
            s.setups.insert(id, setup.clone());
            Reply::Setup(Ok(setup))
        });
        match reply {
            Reply::Setup(setup) => setup,
            _ => unexpected("setup"),
        }
    }

    async fn setup(&self, id: &str) -> Result<SetupIntent, ProviderError> {
        self.state()
            .setups
            .get(id)
            .cloned()
            .ok_or_else(|| no_such(id))
    }

    async fn ping(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::BookingId;

    fn new_intent<'a>(customer: &'a str, off_session: Option<&'a str>, capture: Capture) -> NewIntent<'a> {
        NewIntent {
            amount: 12_050,
            currency: "usd",
            customer,
            capture,
            off_session,
            booking: BookingId::random(),
        }
    }

    #[tokio::test]
    async fn test_cards_behave_as_documented() {
        let mock = Mock::default();
        let customer = mock.create_customer(UserId::random(), "c").await.unwrap();
        let intent = mock
            .create_intent(new_intent(&customer, None, Capture::Automatic), "a")
            .await
            .unwrap();
        assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
        let again = mock
            .create_intent(new_intent(&customer, None, Capture::Automatic), "a")
            .await
            .unwrap();
        assert_eq!(again.id, intent.id, "the same key replays");
        let declined = mock.confirm(&intent.id, "4000000000009995").unwrap();
        assert!(matches!(declined, Err(ProviderError::Declined(m)) if m.contains("insufficient")));
        let Some(Ok(Confirmed::Intent)) = mock.confirm(&intent.id, "4000000000000341") else {
            panic!("0341 pays when the customer is there");
        };
        let paid = mock.intent(&intent.id).await.unwrap();
        assert_eq!((paid.status, paid.amount_received), (IntentStatus::Succeeded, 12_050));
        let pm = paid.payment_method.unwrap();
        let later = mock
            .create_intent(new_intent(&customer, Some(&pm), Capture::Manual), "b")
            .await;
        assert!(matches!(later, Err(ProviderError::Declined(_))), "{later:?}");
        assert!(mock.confirm(&intent.id, "1234").is_none());

        let setup = mock.create_setup(&customer, "s").await.unwrap();
        let Some(Ok(Confirmed::Setup(saved))) = mock.confirm(&setup.id, "4242424242424242") else {
            panic!("the setup is confirmed");
        };
        let pm = saved.payment_method.unwrap();
        let held = mock
            .create_intent(new_intent(&customer, Some(&pm), Capture::Manual), "d")
            .await
            .unwrap();
        assert_eq!(held.status, IntentStatus::RequiresCapture);
        let taken = mock.capture(&held.id, 5_000, "d:capture").await.unwrap();
        assert_eq!((taken.status, taken.amount_received), (IntentStatus::Succeeded, 5_000));
        let refund = mock.refund(&held.id, 6_000, "r").await;
        assert!(matches!(refund, Err(ProviderError::Refused(_))), "no more than was taken");
        assert_eq!(mock.refund(&held.id, 5_000, "r2").await.unwrap().state, RefundState::Succeeded);
    }
}
