//! Car rules: inventory, soft delete, availability; and the `CarCatalog` other modules use.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{BusyInterval, Car, CarAvailability, CarInput, CarRow};
use super::store::{self, CarFilter};
use crate::db::{self, Db, DbConn};
use crate::http::{ApiError, PageRequest, Paginated};
use crate::ports::{CarCatalog, CarSummary, Ports};

pub struct CarsService {
    db: Db,
    ports: Ports,
}

/// A car that exists and is not deleted.
fn live(conn: &mut DbConn, id: Uuid) -> Result<CarRow, ApiError> {
    store::get(conn, &id.to_string())?
        .filter(|c| c.deleted_at.is_none())
        .ok_or(ApiError::NotFound)
}

impl CarsService {
    pub fn new(db: Db, ports: Ports) -> Self {
        CarsService { db, ports }
    }

    pub async fn create(&self, input: CarInput) -> Result<Car, ApiError> {
        let draft = input.into_new().map_err(ApiError::Validation)?;
        let row = CarRow::new(Uuid::new_v4(), draft, db::now());
        self.db
            .run(move |conn| {
                store::insert(conn, &row)?;
                Ok(row.to_api())
            })
            .await
    }

    pub async fn get(&self, id: Uuid) -> Result<Car, ApiError> {
        self.db.run(move |conn| Ok(live(conn, id)?.to_api())).await
    }

    pub async fn list(
        &self,
        filter: CarFilter,
        page: PageRequest,
    ) -> Result<Paginated<Car>, ApiError> {
        let (rows, total) = self
            .db
            .run(move |conn| Ok(store::list(conn, &filter, page.offset(), page.limit())?))
            .await?;
        Ok(page.wrap(rows.iter().map(CarRow::to_api).collect(), total))
    }

    /// Changes only the fields sent.
    pub async fn update(&self, id: Uuid, input: CarInput) -> Result<Car, ApiError> {
        self.db
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    db::lock_row(conn, "cars", &id.to_string(), true)?;
                    let current = live(conn, id)?;
                    let draft = input
                        .apply_to(current.draft())
                        .map_err(ApiError::Validation)?;
                    let mut row = CarRow::new(id, draft, db::now());
                    row.created_at = current.created_at;
                    if store::update(conn, &row)? == 0 {
                        return Err(ApiError::NotFound);
                    }
                    Ok(row.to_api())
                })
            })
            .await
    }

    /// Soft delete: refused while the car has a confirmed or active booking to come.
    pub async fn delete(&self, id: Uuid) -> Result<(), ApiError> {
        let availability = self.ports.availability.clone();
        self.db
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    // Holds off bookings of this car (they lock it for share) until we commit.
                    db::lock_row(conn, "cars", &id.to_string(), true)?;
                    live(conn, id)?;
                    let now = db::now();
                    if availability.has_upcoming_booking(conn, id, now)? {
                        return Err(ApiError::conflict(
                            "The car has an upcoming or active booking",
                        ));
                    }
                    store::soft_delete(conn, &id.to_string(), db::to_db(now))?;
                    Ok(())
                })
            })
            .await
    }

    pub async fn availability(
        &self,
        id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<CarAvailability, ApiError> {
        let availability = self.ports.availability.clone();
        self.db
            .run(move |conn| {
                live(conn, id)?;
                let busy = availability
                    .busy_intervals(conn, id, from, to)?
                    .into_iter()
                    .map(|(start, end)| BusyInterval { start, end })
                    .collect();
                Ok(CarAvailability {
                    car_id: id,
                    from,
                    to,
                    busy,
                })
            })
            .await
    }
}

fn summary(row: &CarRow) -> CarSummary {
    CarSummary {
        id: row.uuid(),
        name: row.name.clone(),
        images: row.images(),
        price_per_day_minor: row.price_per_day,
        currency: row.currency.clone(),
        is_active: row.is_active,
        deleted: row.deleted_at.is_some(),
    }
}

/// The in-process `CarCatalog`.
pub struct Catalog;

impl CarCatalog for Catalog {
    fn car(&self, conn: &mut DbConn, id: Uuid) -> Result<Option<CarSummary>, ApiError> {
        Ok(store::get(conn, &id.to_string())?.as_ref().map(summary))
    }

    fn car_for_booking(&self, conn: &mut DbConn, id: Uuid) -> Result<Option<CarSummary>, ApiError> {
        db::lock_row(conn, "cars", &id.to_string(), false)?;
        self.car(conn, id)
    }

    fn cars(&self, conn: &mut DbConn, ids: &[Uuid]) -> Result<HashMap<Uuid, CarSummary>, ApiError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        Ok(store::get_many(conn, &ids)?
            .iter()
            .map(|row| (row.uuid(), summary(row)))
            .collect())
    }
}
