//! A copy of some columns of `cars` held in the process, brought up to date before it is
//! read. Every write to `cars` stamps the row with the next number of one counter whose
//! row lock the writer holds until it commits (migration `search_fleet`), so committed
//! numbers never leave a gap: catching up reads the rows stamped above the last number
//! seen, usually none, and the copy then says what the table says at that moment.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::RwLock;

use diesel::deserialize::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::schema::data_versions;
use super::DbConn;

/// What one copy keeps of each car row.
pub trait CarCopy: Default + Send + Sync {
    /// A row as read: [`CarCopy::COLUMNS`] and `change_seq`.
    type Row: QueryableByName<<DbConn as Connection>::Backend> + 'static;
    /// The select list of `cars` a row reads, `change_seq` included.
    const COLUMNS: &'static str;
    fn change_seq(row: &Self::Row) -> i64;
    /// Takes the row's current version in place of what was kept of that car.
    fn apply(&mut self, row: Self::Row);
    /// Called after the rows of one catching up are applied.
    fn applied(&mut self) {}
}

struct Copy<T> {
    /// The highest change number applied.
    seen: i64,
    data: T,
}

pub struct Follower<T> {
    seen: AtomicI64,
    copy: RwLock<Copy<T>>,
}

impl<T: CarCopy> Default for Follower<T> {
    fn default() -> Self {
        Follower {
            seen: AtomicI64::new(-1),
            copy: RwLock::new(Copy {
                seen: -1,
                data: T::default(),
            }),
        }
    }
}

impl<T: CarCopy> Follower<T> {
    /// Applies the rows written since the last call (all of them the first time).
    pub fn catch_up(&self, conn: &mut DbConn) -> QueryResult<()> {
        let seen = self.seen.load(Ordering::Acquire);
        // The counter is the last number committed: read first, by a statement the
        // connection keeps prepared, it usually says there is nothing to read.
        let last: i64 = data_versions::table
            .find("car_rows")
            .select(data_versions::version)
            .get_result(conn)?;
        if last <= seen {
            return Ok(());
        }
        let rows: Vec<T::Row> = diesel::sql_query(format!(
            "SELECT {} FROM cars WHERE change_seq > $1 ORDER BY change_seq",
            T::COLUMNS
        ))
        .bind::<BigInt, _>(seen)
        .load(conn)?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut copy = self.copy.write().unwrap_or_else(|e| e.into_inner());
        // Another reader may have applied these, or later versions of them, meanwhile.
        let applied = copy.seen;
        for row in rows {
            let seq = T::change_seq(&row);
            if seq > applied {
                copy.seen = copy.seen.max(seq);
                copy.data.apply(row);
            }
        }
        copy.data.applied();
        self.seen.store(copy.seen, Ordering::Release);
        Ok(())
    }

    /// Catches up, then reads the copy.
    pub fn read<R>(&self, conn: &mut DbConn, f: impl FnOnce(&T) -> R) -> QueryResult<R> {
        self.catch_up(conn)?;
        let copy = self.copy.read().unwrap_or_else(|e| e.into_inner());
        Ok(f(&copy.data))
    }
}
