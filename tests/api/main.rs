//! Black-box API tests over real HTTP. Each test runs on SQLite and on PostgreSQL.

#[macro_use]
mod helpers;

mod accounts;
mod auth;
mod backup;
mod blocks;
mod bookings;
mod cache;
mod cars;
mod channels;
mod docs;
mod fake_opensearch;
mod handover;
mod hardening;
mod localstripe;
mod media;
mod notifications;
mod oidc;
mod opensearch;
mod operations;
mod payments;
mod pricing;
mod search;
mod smtp;
mod split;
mod stripe;
mod stripe_stub;
mod twilio_stub;
