//! The outbox: work written in the same transaction as the change that causes it, drained
//! by background workers with at-least-once delivery, exponential backoff and a `failed`
//! state after the last attempt. Several processes may drain one PostgreSQL database: rows
//! are claimed with `FOR UPDATE SKIP LOCKED` and a lease (`locked_until`) that lets another
//! worker take over when the one holding it died mid-job.

use std::future::Future;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
use tokio::sync::watch;

use crate::http::Choice;
use crate::ids::JobId;

use crate::db::schema::outbox;
use crate::db::{self, Backend, Db, DbConn};
use crate::time;

/// Finished rows are kept this long (for replays and for reading), then purged.
const KEEP_FINISHED: TimeDelta = TimeDelta::days(7);
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// How a topic's worker paces and retries its jobs.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_attempts: i32,
    /// Wait after the first failure; doubles after each further one.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long a claimed job stays with its worker before others may take it.
    pub lease: Duration,
    pub poll: Duration,
    pub batch: i64,
    /// Keep finished rows (as `done`) rather than delete them.
    pub keep_done: bool,
}

impl Policy {
    pub fn backoff_after(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        self.backoff
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max_backoff)
    }
}

/// Where a job stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = Text)]
pub enum JobStatus {
    /// Due now or later (retries included).
    Pending,
    Done,
    /// Given up on after the last attempt, or refused for good.
    Failed,
}

impl Choice for JobStatus {
    const ALL: &'static [(&'static str, Self)] = &[
        ("pending", Self::Pending),
        ("done", Self::Done),
        ("failed", Self::Failed),
    ];
}

crate::stored_as_name!(JobStatus);

#[derive(Debug, Clone, QueryableByName)]
pub struct Job {
    #[diesel(sql_type = Text)]
    pub id: JobId,
    #[diesel(sql_type = Text)]
    pub payload: String,
    /// Attempts so far, this one included.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// Why a job did not go through. Retried with backoff unless retrying cannot help (the
/// other side refused the job itself): then it fails at once, with the reason kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub reason: String,
    pub permanent: bool,
}

impl JobError {
    pub fn permanent(reason: impl Into<String>) -> Self {
        JobError {
            reason: reason.into(),
            permanent: true,
        }
    }
}

impl From<String> for JobError {
    fn from(reason: String) -> Self {
        JobError {
            reason,
            permanent: false,
        }
    }
}

pub type Outcome = Result<(), JobError>;

/// What a handler made of a batch: one outcome per job, in order, and what it has to write
/// about them, written in the transaction that settles the batch (one write, not one per job).
pub struct Handled {
    pub outcomes: Vec<Outcome>,
    pub record: Option<Record>,
}

pub type Record = Box<dyn FnOnce(&mut DbConn) -> QueryResult<()> + Send>;

impl From<Vec<Outcome>> for Handled {
    fn from(outcomes: Vec<Outcome>) -> Self {
        Handled {
            outcomes,
            record: None,
        }
    }
}

/// Queues a job within the caller's transaction; returns its id.
pub fn enqueue(conn: &mut DbConn, topic: &str, payload: &str) -> QueryResult<JobId> {
    let job = NewJob::new(topic, payload, db::to_db(time::now()));
    let id = job.id;
    diesel::insert_into(outbox::table)
        .values(&job)
        .execute(conn)?;
    Ok(id)
}

/// Queues a job for each payload within the caller's transaction, in one statement.
pub fn enqueue_many(conn: &mut DbConn, topic: &str, payloads: &[String]) -> QueryResult<()> {
    let now = db::to_db(time::now());
    let jobs: Vec<NewJob> = payloads
        .iter()
        .map(|payload| NewJob::new(topic, payload, now))
        .collect();
    let insert = diesel::insert_into(outbox::table).values(&jobs);
    // A statement of many rows is written for one backend at a time.
    match conn {
        DbConn::Pg(c) => insert.execute(c)?,
        DbConn::Sqlite(c) => insert.execute(c)?,
    };
    Ok(())
}

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct NewJob<'a> {
    id: JobId,
    topic: &'a str,
    payload: &'a str,
    status: JobStatus,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    created_at: NaiveDateTime,
}

impl<'a> NewJob<'a> {
    fn new(topic: &'a str, payload: &'a str, now: NaiveDateTime) -> Self {
        NewJob {
            id: JobId::random(),
            topic,
            payload,
            status: JobStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        }
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Takes up to `policy.batch` due jobs of `topic` and leases them to this worker.
pub fn claim(conn: &mut DbConn, topic: &str, policy: &Policy) -> QueryResult<Vec<Job>> {
    conn.write_transaction(|conn| {
        let now = time::now();
        // SQLite's write transaction already excludes every other claimer.
        let lock = match conn.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let pending = JobStatus::Pending.name();
        let mut jobs: Vec<Job> = diesel::sql_query(format!(
            "SELECT id, payload, attempts FROM outbox \
             WHERE topic = $1 AND status = '{pending}' AND next_attempt_at <= $2 \
             AND (locked_until IS NULL OR locked_until <= $2) \
             ORDER BY next_attempt_at, created_at LIMIT $3{lock}"
        ))
        .bind::<Text, _>(topic)
        .bind::<Timestamp, _>(db::to_db(now))
        .bind::<BigInt, _>(policy.batch)
        .load(conn)?;
        if jobs.is_empty() {
            return Ok(jobs);
        }
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
        diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
            .set((
                outbox::locked_until.eq(db::to_db(now + delta(policy.lease))),
                outbox::attempts.eq(outbox::attempts + 1),
            ))
            .execute(conn)?;
        for job in &mut jobs {
            job.attempts += 1;
        }
        Ok(jobs)
    })
}

/// Records each job's outcome: done, or retried after a backoff, or failed for good. The
/// jobs done, nearly all of them, are settled in one statement.
pub fn settle(
    conn: &mut DbConn,
    jobs: &[(Job, Outcome)],
    policy: &Policy,
) -> QueryResult<Vec<Settled>> {
    let now = time::now();
    let done: Vec<JobId> = jobs
        .iter()
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(job, _)| job.id)
        .collect();
    if !done.is_empty() {
        let rows = outbox::table.filter(outbox::id.eq_any(&done));
        if policy.keep_done {
            diesel::update(rows)
                .set((
                    outbox::status.eq(JobStatus::Done),
                    outbox::locked_until.eq(None::<chrono::NaiveDateTime>),
                    outbox::finished_at.eq(db::to_db(now)),
                ))
                .execute(conn)?;
        } else {
            diesel::delete(rows).execute(conn)?;
        }
    }
    let mut settled = vec![Settled::Done; done.len()];
    for (job, outcome) in jobs {
        let Err(error) = outcome else {
            continue;
        };
        let row = outbox::table.find(job.id);
        if error.permanent || job.attempts >= policy.max_attempts {
            diesel::update(row)
                .set((
                    outbox::status.eq(JobStatus::Failed),
                    outbox::locked_until.eq(None::<chrono::NaiveDateTime>),
                    outbox::last_error.eq(&error.reason),
                    outbox::finished_at.eq(db::to_db(now)),
                ))
                .execute(conn)?;
            settled.push(Settled::Failed);
        } else {
            let next = now + delta(policy.backoff_after(job.attempts));
            diesel::update(row)
                .set((
                    outbox::locked_until.eq(None::<chrono::NaiveDateTime>),
                    outbox::next_attempt_at.eq(db::to_db(next)),
                    outbox::last_error.eq(&error.reason),
                ))
                .execute(conn)?;
            settled.push(Settled::Retry);
        }
    }
    Ok(settled)
}

/// Jobs not done, by topic and status, with the age in seconds of the oldest of each.
pub fn backlog(conn: &mut DbConn) -> QueryResult<Vec<(String, JobStatus, i64, f64)>> {
    let rows: Vec<(String, JobStatus, i64, Option<chrono::NaiveDateTime>)> = outbox::table
        .filter(outbox::status.ne(JobStatus::Done))
        .group_by((outbox::topic, outbox::status))
        .select((
            outbox::topic,
            outbox::status,
            diesel::dsl::count_star(),
            diesel::dsl::min(outbox::created_at),
        ))
        .load(conn)?;
    let now = time::now();
    Ok(rows
        .into_iter()
        .map(|(topic, status, jobs, oldest)| {
            let age = oldest.map_or(0.0, |t| {
                (now - db::from_db(t)).num_milliseconds().max(0) as f64 / 1000.0
            });
            (topic, status, jobs, age)
        })
        .collect())
}

/// Makes the jobs of `topic` finished since `since` due again (a rebuilt search index
/// replays the changes made while it was being built).
pub fn requeue_done_since(
    conn: &mut DbConn,
    topic: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> QueryResult<usize> {
    let now = db::to_db(time::now());
    diesel::update(
        outbox::table
            .filter(outbox::topic.eq(topic))
            .filter(outbox::status.eq(JobStatus::Done))
            .filter(outbox::finished_at.ge(db::to_db(since))),
    )
    .set((
        outbox::status.eq(JobStatus::Pending),
        outbox::attempts.eq(0),
        outbox::next_attempt_at.eq(now),
        outbox::finished_at.eq(None::<chrono::NaiveDateTime>),
    ))
    .execute(conn)
}

/// Forgets finished jobs of `topic` older than `before`.
pub fn purge_finished(
    conn: &mut DbConn,
    topic: &str,
    before: chrono::DateTime<chrono::Utc>,
) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::topic.eq(topic))
            .filter(outbox::status.ne(JobStatus::Pending))
            .filter(outbox::finished_at.lt(db::to_db(before))),
    )
    .execute(conn)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Done,
    Retry,
    Failed,
}

/// Tells workers to stop after the job in hand.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    pub fn channel() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps for `d`, or less when a stop is requested.
    pub async fn sleep(&mut self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.0.wait_for(|stop| *stop) => {}
        }
    }
}

/// Drains `topic` until stopped. `handle` gets a batch of jobs and answers one outcome per
/// job, in order (see [`Handled`]); `on_settled` hears how each ended (for metrics).
pub async fn run_worker<H, F, R>(
    db: Db,
    topic: &'static str,
    policy: Policy,
    mut stop: Stop,
    handle: H,
    on_settled: impl Fn(Settled) + Send + 'static,
) where
    H: Fn(Vec<Job>) -> F + Send + 'static,
    F: Future<Output = R> + Send,
    R: Into<Handled>,
{
    tracing::info!(topic, "outbox worker started");
    let mut next_purge = tokio::time::Instant::now();
    while !stop.requested() {
        if policy.keep_done && tokio::time::Instant::now() >= next_purge {
            next_purge += PURGE_EVERY;
            let before = time::now() - KEEP_FINISHED;
            if let Err(e) = db
                .writing(move |conn| Ok(purge_finished(conn, topic, before)?))
                .await
            {
                tracing::warn!(topic, error = %e, "outbox: cannot purge finished jobs");
            }
        }
        let claimed = {
            let policy = policy.clone();
            db.writing(move |conn| Ok(claim(conn, topic, &policy)?))
                .await
        };
        let jobs = match claimed {
            Ok(jobs) if jobs.is_empty() => {
                stop.sleep(policy.poll).await;
                continue;
            }
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(topic, error = %e, "outbox: cannot claim jobs");
                stop.sleep(policy.poll.max(Duration::from_secs(1))).await;
                continue;
            }
        };
        let Handled { outcomes, record } = handle(jobs.clone()).await.into();
        let missing = std::iter::repeat_with(|| Err(JobError::from("no outcome".to_owned())));
        let batch: Vec<(Job, Outcome)> = jobs
            .into_iter()
            .zip(outcomes.into_iter().chain(missing))
            .collect();
        for (job, outcome) in &batch {
            if let Err(error) = outcome {
                tracing::warn!(topic, job = %job.id, attempts = job.attempts, error = %error.reason, permanent = error.permanent, "outbox job failed");
            }
        }
        let policy_for_settle = policy.clone();
        let settled = db
            .write(move |conn| {
                if let Some(record) = record {
                    record(conn)?;
                }
                Ok(settle(conn, &batch, &policy_for_settle)?)
            })
            .await;
        match settled {
            Ok(list) => list.into_iter().for_each(&on_settled),
            // The lease runs out and the jobs are tried again: at least once.
            Err(e) => tracing::warn!(topic, error = %e, "outbox: cannot record outcomes"),
        }
    }
    tracing::info!(topic, "outbox worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = Policy {
            max_attempts: 8,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            batch: 10,
            keep_done: true,
        };
        let waits: Vec<u64> = (1..=10).map(|n| p.backoff_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
    }
}
