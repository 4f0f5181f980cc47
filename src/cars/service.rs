//! Car rules: inventory, soft delete, availability; and the `CarCatalog` other modules use.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use crate::ids::{BookingId, CarId, UploadId, UserId};

use super::extras::{self, Extra, ExtraInput, ExtraRow};
use super::listing::Listing;
use super::model::{
    Car, CarAvailability, CarFilter, CarInput, CarRecord, Quote, QuoteRequest, Window,
};
use super::uploads::{self as media, Media};
use super::model::StoredPhoto;
use super::store;
use crate::cache::{ReadCache, CACHED_PAGES};
use crate::db::{self, Db, DbConn};
use crate::error::ApiError;
use crate::http::etag::Tagged;
use crate::http::PageRequest;
use crate::ports::{self, CarCatalog, CarDocument, CarSummary, Lock, Ports};
use crate::{money, pricing, time};

pub struct CarsService {
    db: Db,
    ports: Ports,
    cache: Arc<ReadCache>,
    media: Arc<Media>,
    listing: Arc<Listing>,
}

/// A car that exists and is not deleted.
fn live(conn: &mut DbConn, id: CarId) -> Result<CarRecord, ApiError> {
    store::get(conn, id)?
        .filter(|c| c.deleted_at.is_none())
        .ok_or(ApiError::NotFound)
}

impl CarsService {
    pub fn new(db: Db, ports: Ports, cache: Arc<ReadCache>, media: Arc<Media>) -> Self {
        CarsService {
            db,
            ports,
            cache,
            media,
            listing: Arc::default(),
        }
    }

    /// Loads the listing's copy of the fleet now rather than at the first listing.
    pub fn warm(&self) -> tokio::task::JoinHandle<()> {
        let listing = self.listing.clone();
        crate::db::follow::warm(self.db.clone(), move |conn| listing.catch_up(conn))
    }

    pub fn media(&self) -> &Arc<Media> {
        &self.media
    }

    /// Whether the car exists and is not deleted.
    pub async fn exists(&self, id: CarId) -> Result<bool, ApiError> {
        self.db
            .run(move |conn| Ok(store::is_live(conn, id)?))
            .await
    }

    /// Changes the car's photos under its lock: `change` edits the list and names the
    /// objects no longer used, which are deleted through the outbox once this commits.
    pub async fn change_photos<T, F>(&self, id: CarId, change: F) -> Result<(Car, T), ApiError>
    where
        F: FnOnce(&mut Vec<StoredPhoto>) -> Result<(T, Vec<String>), ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let indexer = self.ports.indexer.clone();
        let _writing = self.cache.writing();
        self.db
            .write(move |conn| {
                ports::lock(conn, Lock::Car(id))?;
                let mut row = live(conn, id)?;
                let mut photos = row.photos();
                let (answer, unused) = change(&mut photos)?;
                row.set_photos(&photos);
                row.updated_at = db::to_db(time::now());
                if store::update(conn, &row)? == 0 {
                    return Err(ApiError::NotFound);
                }
                media::delete_later(conn, &unused)?;
                indexer.car_changed(conn, id)?;
                Ok((row.to_api(), answer))
            })
            .await
    }

    /// The catalogue as this module answers it (the internal routes serve it).
    pub fn catalog(&self) -> Catalog {
        Catalog::new(self.db.clone())
    }

    pub async fn create(&self, input: CarInput) -> Result<Car, ApiError> {
        let draft = input.into_new().map_err(ApiError::Validation)?;
        let row = CarRecord::new(CarId::random(), draft, time::now());
        let indexer = self.ports.indexer.clone();
        let _writing = self.cache.writing();
        self.db
            .write(move |conn| {
                store::insert(conn, &row)?;
                indexer.car_changed(conn, row.id)?;
                Ok(row.to_api())
            })
            .await
    }

    /// The car as `GET /cars/{id}` sends it, from the cache when it holds it.
    pub async fn get(&self, id: CarId) -> Result<Arc<Tagged>, ApiError> {
        let read = async {
            let car = self
                .db
                .run(move |conn| Ok(live(conn, id)?.to_api()))
                .await?;
            Ok(Arc::new(Tagged::json(&car)?))
        };
        self.cache.through(&self.cache.cars, id, read).await
    }

    /// A page of `GET /cars` as sent; the first pages from the cache when it holds them.
    pub async fn list(
        &self,
        filter: CarFilter,
        page: PageRequest,
    ) -> Result<Arc<Tagged>, ApiError> {
        if page.page > CACHED_PAGES {
            return self.read_page(filter, page).await;
        }
        let key = format!("{filter:?} {} {}", page.page, page.limit);
        self.cache
            .through(&self.cache.pages, key, self.read_page(filter, page))
            .await
    }

    /// A page and its total, both of one moment ([`Listing`]).
    async fn read_page(
        &self,
        filter: CarFilter,
        page: PageRequest,
    ) -> Result<Arc<Tagged>, ApiError> {
        let listing = self.listing.clone();
        let (offset, limit) = (page.offset(), page.limit());
        let (rows, total) = self
            .db
            .run(move |conn| {
                let (ids, total) = listing.page(conn, &filter, offset, limit)?;
                let mut rows = store::get_many(conn, &ids)?;
                rows.sort_by_key(|row| ids.iter().position(|id| *id == row.id));
                Ok((rows, total))
            })
            .await?;
        Ok(Arc::new(Tagged::json(&page.wrap(
            rows.iter().map(CarRecord::to_api).collect::<Vec<Car>>(),
            total,
        ))?))
    }

    /// Changes only the fields sent.
    pub async fn update(&self, id: CarId, input: CarInput) -> Result<Car, ApiError> {
        let indexer = self.ports.indexer.clone();
        let _writing = self.cache.writing();
        self.db
            .write(move |conn| {
                ports::lock(conn, Lock::Car(id))?;
                let current = live(conn, id)?;
                let mut draft = input
                    .apply_to(current.draft())
                    .map_err(ApiError::Validation)?;
                // A car read and written back sends its photos' URLs in `images`: they are
                // the photos', not URLs given directly.
                let photos = current.photos();
                draft.images.retain(|url| photos.iter().all(|p| &p.url != url));
                let mut row = CarRecord::new(id, draft, time::now());
                row.created_at = current.created_at;
                row.photos = current.photos.clone();
                if store::update(conn, &row)? == 0 {
                    return Err(ApiError::NotFound);
                }
                indexer.car_changed(conn, id)?;
                Ok(row.to_api())
            })
            .await
    }

    /// Soft delete: refused while the car has a confirmed or active booking to come. The car
    /// lock keeps bookings of it out between the question to bookings and the delete.
    pub async fn delete(&self, id: CarId) -> Result<(), ApiError> {
        let _writing = self.cache.writing();
        let mut tx = self.db.begin().await?;
        tx.run(move |conn| {
            ports::lock(conn, Lock::Car(id))?;
            live(conn, id).map(drop)
        })
        .await?;
        let now = time::now();
        if self
            .ports
            .availability
            .has_upcoming_booking(id, now)
            .await?
        {
            return Err(ApiError::conflict(
                "The car has an upcoming or active booking",
            ));
        }
        let indexer = self.ports.indexer.clone();
        tx.run(move |conn| {
            // Its photos' objects go with it; the row keeps the list for the records.
            let keys: Vec<String> = live(conn, id)?
                .photos()
                .into_iter()
                .flat_map(|p| p.keys)
                .collect();
            media::delete_later(conn, &keys)?;
            store::soft_delete(conn, id, db::to_db(now))?;
            indexer.car_changed(conn, id)
        })
        .await?;
        tx.commit().await
    }

    pub async fn availability(
        &self,
        id: CarId,
        window: Window,
    ) -> Result<CarAvailability, ApiError> {
        let Window { from, to } = window;
        self.db.run(move |conn| live(conn, id).map(drop)).await?;
        let busy = self.ports.availability.busy_intervals(id, from, to).await?;
        Ok(CarAvailability {
            car_id: id,
            from,
            to,
            busy,
        })
    }
}

impl CarsService {
    /// The price of a rental of the car under its rules now, as a booking made now would
    /// store it.
    pub async fn quote(&self, id: CarId, req: QuoteRequest) -> Result<Quote, ApiError> {
        let car = self.db.run(move |conn| live(conn, id)).await?;
        let days = pricing::rental_days(req.pickup, req.dropoff);
        let price = pricing::rental_price(
            car.price_per_day,
            &car.pricing().unwrap_or_default(),
            req.pickup,
            days,
        );
        let codes: Vec<String> = req.extras.iter().map(|e| e.code.clone()).collect();
        let catalogue = self.catalog().extra_prices(&codes).await?;
        let extra_lines = pricing::extra_lines(
            &req.extras,
            &catalogue,
            &car.currency,
            days,
            pricing::ExtrasField::Query,
        )
        .map_err(ApiError::Validation)?;
        let mut lines = price.lines();
        lines.extend(extra_lines);
        let free = self
            .ports
            .availability
            .busy_intervals(
                id,
                req.pickup,
                crate::ports::hold_end(req.dropoff, i64::from(car.buffer_minutes)),
            )
            .await?
            .is_empty();
        Ok(Quote {
            car_id: id,
            pickup_time: req.pickup,
            dropoff_time: req.dropoff,
            days,
            currency: car.currency.clone(),
            available: free && car.is_active,
            total_price: money::to_major(lines.iter().map(|l| l.amount_minor).sum()),
            lines: lines.iter().map(pricing::Line::view).collect(),
        })
    }

    /// The active extras, by code.
    pub async fn extras(&self) -> Result<Vec<Extra>, ApiError> {
        let rows = self.db.run(|conn| Ok(extras::active(conn)?)).await?;
        Ok(rows.iter().map(ExtraRow::to_api).collect())
    }

    pub async fn create_extra(&self, input: ExtraInput) -> Result<Extra, ApiError> {
        let row = input
            .apply(None, time::now())
            .map_err(ApiError::Validation)?;
        self.db
            .write(move |conn| {
                if extras::get(conn, &row.code)?.is_some() {
                    return Err(ApiError::conflict(format!("The extra {} exists", row.code)));
                }
                extras::insert(conn, &row).map_err(|e| {
                    if crate::error::is_unique_violation(&e) {
                        ApiError::conflict(format!("The extra {} exists", row.code))
                    } else {
                        e.into()
                    }
                })?;
                Ok(row.to_api())
            })
            .await
    }

    pub async fn update_extra(&self, code: String, input: ExtraInput) -> Result<Extra, ApiError> {
        self.db
            .write(move |conn| {
                let base = extras::get(conn, &code)?.ok_or(ApiError::NotFound)?;
                let row = input
                    .apply(Some(base), time::now())
                    .map_err(ApiError::Validation)?;
                extras::update(conn, &row)?;
                Ok(row.to_api())
            })
            .await
    }
}

fn summary(row: &CarRecord) -> CarSummary {
    CarSummary {
        id: row.id,
        name: row.name.clone(),
        images: row.images(),
        price_per_day_minor: row.price_per_day,
        currency: row.currency.clone(),
        is_active: row.is_active,
        deleted: row.deleted_at.is_some(),
        pricing: row.pricing(),
        mileage_limit_km_per_day: row.mileage_limit_km_per_day.map(i64::from),
        extra_km_price_minor: row.extra_km_price,
        buffer_minutes: i64::from(row.buffer_minutes),
        deposit_minor: row.deposit_amount,
        time_zone: row.time_zone(),
    }
}

fn document(row: &CarRecord) -> CarDocument {
    CarDocument {
        id: row.id,
        json: serde_json::to_value(row.to_api()).unwrap_or_default(),
        is_active: row.is_active,
        latitude: row.latitude,
        longitude: row.longitude,
        price_per_day_minor: row.price_per_day,
        fuel_type: row.fuel_type.clone(),
        transmission: row.transmission.clone(),
        seats: row.seats,
        search_text: row.search_text.clone(),
    }
}

/// The in-process `CarCatalog`.
pub struct Catalog {
    db: Db,
}

impl Catalog {
    pub fn new(db: Db) -> Self {
        Catalog { db }
    }
}

#[async_trait]
impl CarCatalog for Catalog {
    async fn car(&self, id: CarId) -> Result<Option<CarSummary>, ApiError> {
        self.db
            .run(move |conn| Ok(store::get(conn, id)?.as_ref().map(summary)))
            .await
    }

    async fn cars(&self, ids: &[CarId]) -> Result<HashMap<CarId, CarSummary>, ApiError> {
        let ids = ids.to_vec();
        self.db
            .run(move |conn| {
                Ok(store::get_many(conn, &ids)?
                    .iter()
                    .map(|row| (row.id, summary(row)))
                    .collect())
            })
            .await
    }

    async fn documents(&self, ids: &[CarId]) -> Result<HashMap<CarId, CarDocument>, ApiError> {
        let ids = ids.to_vec();
        self.db
            .run(move |conn| {
                Ok(store::get_many(conn, &ids)?
                    .iter()
                    .filter(|row| row.deleted_at.is_none())
                    .map(|row| (row.id, document(row)))
                    .collect())
            })
            .await
    }

    async fn extra_prices(
        &self,
        codes: &[String],
    ) -> Result<HashMap<String, pricing::ExtraPrice>, ApiError> {
        if codes.is_empty() {
            return Ok(HashMap::new());
        }
        let codes = codes.to_vec();
        let rows = self
            .db
            .run(move |conn| Ok(extras::get_many(conn, &codes)?))
            .await?;
        Ok(rows.iter().map(|r| (r.code.clone(), r.price())).collect())
    }

    async fn damage_photos(
        &self,
        booking: BookingId,
        ids: &[UploadId],
    ) -> Result<HashMap<UploadId, String>, ApiError> {
        let ids = ids.to_vec();
        let rows = self
            .db
            .run(move |conn| Ok(media::damage_photos_of(conn, booking, &ids)?))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| Some((row.id, row.variant_key("large")?)))
            .collect())
    }

    async fn licence_verified(&self, user: UserId) -> Result<bool, ApiError> {
        self.db
            .run(move |conn| Ok(super::licences::is_verified(conn, user)?))
            .await
    }

    async fn forget_licence(&self, user: UserId) -> Result<(), ApiError> {
        self.db
            .write(move |conn| super::licences::forget(conn, user))
            .await
    }

    async fn ids_after(&self, after: Option<CarId>, limit: i64) -> Result<Vec<CarId>, ApiError> {
        self.db
            .run(move |conn| Ok(store::ids_after(conn, after, limit)?))
            .await
    }
}
