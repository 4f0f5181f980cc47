//! A copy of some columns of `cars` held in the process, brought up to date before it is
//! read. Every write to `cars` stamps the row with the next number of one counter whose
//! row lock the writer holds until it commits (migration `search_fleet`), so committed
//! numbers never leave a gap: catching up reads the rows stamped above the last number
//! seen, usually none, and the copy then says what the table says at that moment.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, RwLock};

use diesel::deserialize::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::data_versions;
use super::{Db, DbConn};

/// What one copy keeps of each car row.
pub trait CarCopy: Default + Send + Sync {
    /// A row as read: [`CarCopy::COLUMNS`] and `change_seq`.
    type Row: QueryableByName<<DbConn as Connection>::Backend> + 'static;
    /// The select list of `cars` a row reads, `change_seq` included.
    const COLUMNS: &'static str;
    /// The row's `(change_seq, id)`.
    fn key(row: &Self::Row) -> (i64, String);
    /// Takes the row's current version in place of what was kept of that car, whether that
    /// was put in order or applied since the last [`CarCopy::applied`].
    fn apply(&mut self, row: Self::Row);
    /// Called after the rows of one chunk are applied (of all chunks, for the first
    /// catching up).
    fn applied(&mut self) {}
    /// Gives back the room that growing by many rows left unused.
    fn shrink(&mut self) {}
}

/// Rows read per statement: a first catching up over a large fleet holds this many rows
/// at a time rather than all of them.
const CHUNK: i64 = 5_000;

pub struct Follower<T> {
    /// Every row numbered up to this is applied.
    seen: AtomicI64,
    /// Held by the one catching up that reads rows: where it goes on from, as the
    /// `(change_seq, id)` of the last row applied (the migration's rows all have 0).
    reading: Mutex<(i64, String)>,
    copy: RwLock<T>,
}

impl<T: CarCopy> Default for Follower<T> {
    fn default() -> Self {
        Follower {
            seen: AtomicI64::new(-1),
            reading: Mutex::new((-1, String::new())),
            copy: RwLock::new(T::default()),
        }
    }
}

impl<T: CarCopy> Follower<T> {
    /// Applies the rows written since the last call (all of them the first time).
    pub fn catch_up(&self, conn: &mut DbConn) -> QueryResult<()> {
        // The counter is the last number committed: read first, by a statement the
        // connection keeps prepared, it usually says there is nothing to read.
        let last: i64 = data_versions::table
            .find("car_rows")
            .select(data_versions::version)
            .get_result(conn)?;
        if last <= self.seen.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut from = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        if last <= self.seen.load(Ordering::Acquire) {
            return Ok(()); // read by the one this waited for
        }
        // Nothing reads the copy before its first catching up ends (a read waits on
        // `reading` until `seen` is set), so that one puts it in order once, at its end,
        // rather than after every chunk (at a million cars, 200 sorts of the whole copy).
        let first = self.seen.load(Ordering::Acquire) < 0;
        let mut read = 0;
        loop {
            let rows: Vec<T::Row> = diesel::sql_query(format!(
                "SELECT {} FROM cars WHERE (change_seq, id) > ($1, $2) \
                 ORDER BY change_seq, id LIMIT {CHUNK}",
                T::COLUMNS
            ))
            .bind::<BigInt, _>(from.0)
            .bind::<Text, _>(&from.1)
            .load(conn)?;
            let done = (rows.len() as i64) < CHUNK;
            read += rows.len() as i64;
            let last_key = rows.last().map(T::key);
            if !rows.is_empty() {
                let mut copy = self.copy.write().unwrap_or_else(|e| e.into_inner());
                rows.into_iter().for_each(|row| copy.apply(row));
                if !first {
                    copy.applied();
                }
            }
            if let Some(key) = last_key {
                *from = key;
            }
            if done {
                break;
            }
        }
        if first {
            self.copy
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .applied();
        }
        if read >= CHUNK {
            self.copy
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .shrink();
            crate::memory::give_back();
        }
        // Every row numbered up to `last` was committed before these reads began.
        self.seen.fetch_max(last.max(from.0), Ordering::AcqRel);
        Ok(())
    }

    /// Catches up, then reads the copy.
    pub fn read<R>(&self, conn: &mut DbConn, f: impl FnOnce(&T) -> R) -> QueryResult<R> {
        self.catch_up(conn)?;
        let copy = self.copy.read().unwrap_or_else(|e| e.into_inner());
        Ok(f(&copy))
    }
}

/// Loads a copy as the process starts, so that the first reads do not wait for it.
pub fn warm(
    db: Db,
    catch_up: impl FnOnce(&mut DbConn) -> QueryResult<()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = db.run(move |conn| Ok(catch_up(conn)?)).await {
            tracing::warn!(%error, "loading a copy of the fleet at start; the first read will");
        }
    })
}
