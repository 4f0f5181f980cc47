//! What messages say: one template per kind and language (`templates/{en,fr}/{kind}.txt`),
//! rendered for each channel. A template has three blocks: `subject` (the email's subject,
//! the push title), `body` (the email, as plain text and as HTML from the same source) and
//! `short` (an SMS, a push notification's text). In the HTML part every value is escaped
//! by minijinja; the template's own text holds no markup.

mod format;
pub mod preferences;
mod recipient;

use std::sync::LazyLock;

use minijinja::{Environment, State, Value};
use serde_json::Map;

use crate::ids::UserId;

pub use format::{money, span, time_zone_at, when};
pub use recipient::{Contact, Locale};

/// One message in one language, for every channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub short: String,
}

/// A message another module wants sent: its kind, to whom, and the values its template
/// shows. Notifications decides the channels and renders it in the recipient's language.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub user_id: UserId,
    pub kind: &'static str,
    pub to: Contact,
    values: Map<String, serde_json::Value>,
    /// Its rendering, when made ahead of the write that queues it.
    ahead: Option<Rendered>,
}

impl OutgoingMessage {
    /// A message greeting the contact by name (their address when they gave none).
    pub fn new(user_id: UserId, kind: &'static str, to: &Contact) -> Self {
        let mut values = Map::new();
        let name = to.name.clone().unwrap_or_else(|| to.email.clone());
        values.insert("name".into(), name.into());
        OutgoingMessage {
            user_id,
            kind,
            to: to.clone(),
            values,
            ahead: None,
        }
    }

    /// Adds a value the template shows.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.values.insert(key.to_owned(), value.into());
        self
    }

    /// A value given with [`with`](Self::with) (the push payload's `url` and `bookingId`).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(|v| v.as_str())
    }

    pub fn render(&self) -> Result<Rendered, String> {
        render(self.kind, self.to.locale, &self.values)
    }

    /// Its rendering: the one made ahead if there is one, else made now.
    pub fn rendered(&self) -> Result<Rendered, String> {
        match &self.ahead {
            Some(rendered) => Ok(rendered.clone()),
            None => self.render(),
        }
    }

    /// Renders it now, so that the write that queues it later does not (a write that holds
    /// SQLite's one writer's turn should not spend it on templates). Left unrendered when
    /// that fails: queueing it reports the error.
    pub fn render_ahead(mut self) -> Self {
        self.ahead = self.render().ok();
        self
    }

    /// This message with the rendering made ahead for the same message among `ahead`, if
    /// there is one (same kind, recipient and values: the same text).
    pub fn rendered_like(mut self, ahead: &[OutgoingMessage]) -> Self {
        if self.ahead.is_none() {
            self.ahead = ahead
                .iter()
                .find(|a| {
                    a.kind == self.kind
                        && a.user_id == self.user_id
                        && a.to == self.to
                        && a.values == self.values
                })
                .and_then(|a| a.ahead.clone());
        }
        self
    }
}

macro_rules! templates {
    ($($kind:literal),* $(,)?) => {
        /// Every kind of message, each with an English and a French template.
        pub const KINDS: &[&str] = &[$($kind),*];

        fn add_templates(env: &mut Environment<'static>) -> Result<(), minijinja::Error> {
            $(
                for (locale, source) in [
                    ("en", include_str!(concat!("templates/en/", $kind, ".txt"))),
                    ("fr", include_str!(concat!("templates/fr/", $kind, ".txt"))),
                ] {
                    // The same source twice: `.html` turns on HTML escaping of every value.
                    env.add_template(leak(format!("{locale}/{}.txt", $kind)), source)?;
                    env.add_template(leak(format!("{locale}/{}.html", $kind)), source)?;
                }
            )*
            Ok(())
        }
    };
}

templates![
    "welcome",
    "verify_email",
    "password_reset",
    "password_changed",
    "phone_code",
    "booking_confirmed",
    "booking_cancelled",
    "booking_completed",
    "hold_expired",
    "payment_received",
    "payment_failed",
    "refund_issued",
    "deposit_captured",
    "deposit_released",
    "balance_due",
    "payment_disputed",
    "pickup_reminder",
    "return_reminder",
    "overdue_return",
];

/// Template names live as long as the environment, which lives as long as the process.
fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

static TEMPLATES: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| format!("message templates: {e}"))?;
    env.set_syntax(syntax);
    env.add_filter("money", money_filter);
    env.add_filter("when", when_filter);
    env.add_filter("span", |state: &State, seconds: u64| {
        format::span(seconds, locale_of(state))
    });
    add_templates(&mut env).map_err(|e| format!("message templates: {e:#}"))?;
    Ok(env)
});

fn locale_of(state: &State) -> Locale {
    state
        .lookup("locale")
        .and_then(|v| v.as_str().map(|s| s == "fr"))
        .map_or(Locale::En, |fr| if fr { Locale::Fr } else { Locale::En })
}

/// `{{ amount|money(currency) }}`: hundredths written the reader's way.
fn money_filter(state: &State, hundredths: i64, currency: String) -> String {
    format::money(hundredths, &currency, locale_of(state))
}

/// `{{ instant|when }}`: an RFC 3339 instant in the zone the template's `tz` names.
fn when_filter(state: &State, instant: String) -> Result<String, minijinja::Error> {
    let at = chrono::DateTime::parse_from_rfc3339(&instant).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    let tz = state
        .lookup("tz")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "UTC".into());
    Ok(format::when(at.to_utc(), &tz, locale_of(state)))
}

/// Renders `kind` in `locale` with `values`.
pub fn render(
    kind: &str,
    locale: Locale,
    values: &Map<String, serde_json::Value>,
) -> Result<Rendered, String> {
    let env = TEMPLATES.as_ref().map_err(Clone::clone)?;
    let mut context = values.clone();
    context.insert("locale".into(), locale.to_string().into());
    let context = Value::from(minijinja::value::Serde(&context));
    // Each template is evaluated once; its blocks are then rendered from that one state.
    let evaluated = |ext: &str| -> Result<(String, minijinja::Captured<'static>), String> {
        let name = format!("{locale}/{kind}.{ext}");
        let template = env
            .get_template(&name)
            .map_err(|e| format!("no template {name}: {e}"))?;
        let captured = template
            .render_captured(context.clone())
            .map_err(|e| format!("{name}: {e:#}"))?;
        Ok((name, captured))
    };
    let block = |(name, captured): &mut (String, minijinja::Captured<'static>), block: &str| {
        captured
            .with_state_mut(|state| state.render_block(block))
            .map(|s| s.trim().to_owned())
            .map_err(|e| format!("{name}, block {block}: {e:#}"))
    };
    let (mut txt, mut html) = (evaluated("txt")?, evaluated("html")?);
    Ok(Rendered {
        subject: block(&mut txt, "subject")?,
        text: block(&mut txt, "body")?,
        html: html_page(&block(&mut html, "subject")?, &block(&mut html, "body")?),
        short: block(&mut txt, "short")?,
    })
}

/// The HTML part: each paragraph of the (escaped) body a `<p>`, its lines kept.
fn html_page(title: &str, body: &str) -> String {
    let paragraphs: Vec<String> = body
        .split("\n\n")
        .map(|p| format!("<p>{}</p>", p.trim().replace('\n', "<br>\n")))
        .collect();
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n{}\n</body></html>",
        paragraphs.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, serde_json::Value)]) -> Map<String, serde_json::Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn booking() -> Map<String, serde_json::Value> {
        values(&[
            ("name", "<script>alert(1)</script>".into()),
            ("car", "Clio & <b>Zoé</b>".into()),
            ("bookingId", "b-1".into()),
            ("pickup", "2026-07-01T08:00:00Z".into()),
            ("dropoff", "2026-07-03T08:00:00Z".into()),
            ("tz", "Europe/Paris".into()),
            ("days", 2.into()),
            ("total", 123450.into()),
            ("currency", "EUR".into()),
            ("lines", serde_json::json!([])),
            ("reason", "".into()),
        ])
    }

    #[test]
    fn a_rendering_made_ahead_serves_only_the_same_message() {
        let to = Contact {
            email: "a@x.io".into(),
            name: Some("Ann".into()),
            email_verified: true,
            phone: None,
            locale: Locale::En,
        };
        let user = UserId::random();
        let receipt = |amount: i64| {
            OutgoingMessage::new(user, "payment_received", &to)
                .with("bookingId", "b-1")
                .with("currency", "USD")
                .with("charged", false)
                .with("amount", amount)
        };
        let ahead = [receipt(20000).render_ahead()];
        assert_eq!(
            ahead[0].rendered().unwrap(),
            receipt(20000).render().unwrap()
        );
        let same = receipt(20000).rendered_like(&ahead);
        assert!(same.ahead.is_some());
        // Another amount, recipient or language: rendered when queued, from its own values.
        let other = receipt(15000).rendered_like(&ahead);
        assert!(other.ahead.is_none());
        assert!(other.rendered().unwrap().text.contains("$150.00"));
        let french = Contact {
            locale: Locale::Fr,
            ..to.clone()
        };
        let mut elsewhere = receipt(20000);
        elsewhere.to = french;
        assert!(elsewhere.rendered_like(&ahead).ahead.is_none());
    }

    #[test]
    fn every_kind_renders_in_both_languages_with_every_value_escaped_in_html() {
        let mut all = booking();
        for (k, v) in [
            ("email", "a@x.io"),
            ("link", "https://app/x?token=t"),
            ("code", "123456"),
            ("amount", "1"),
        ] {
            all.insert(k.into(), v.into());
        }
        all.insert("amount".into(), 5000.into());
        all.insert("ttl".into(), 7200.into());
        all.insert("charged".into(), true.into());
        for kind in KINDS {
            for locale in [Locale::En, Locale::Fr] {
                let r =
                    render(kind, locale, &all).unwrap_or_else(|e| panic!("{kind} {locale}: {e}"));
                assert!(
                    !r.subject.is_empty() && !r.text.is_empty() && !r.short.is_empty(),
                    "{kind} {locale}"
                );
                assert!(
                    !r.html.contains("<script>") && !r.html.contains("<b>"),
                    "{kind} {locale}: {}",
                    r.html
                );
            }
        }
    }

    #[test]
    fn dates_in_the_cars_zone_and_money_the_readers_way() {
        let en = render("booking_confirmed", Locale::En, &booking()).unwrap();
        assert!(en.text.contains("€1,234.50"), "{}", en.text);
        assert!(en.text.contains("1 Jul 2026, 10:00 CEST"), "{}", en.text);
        assert!(en.html.contains("&lt;script&gt;"), "{}", en.html);
        let fr = render("booking_confirmed", Locale::Fr, &booking()).unwrap();
        assert!(fr.text.contains("1 234,50 €"), "{}", fr.text);
        assert!(fr.text.contains("1 juil. 2026 à 10:00 CEST"), "{}", fr.text);
        assert!(
            fr.subject.starts_with("Réservation confirmée"),
            "{}",
            fr.subject
        );
    }
}
