// Written by hand to match migrations/{postgres,sqlite}: both backends share these types.

diesel::table! {
    users (id) {
        id -> Text,
        email -> Nullable<Text>,
        name -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        role -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        email_verified -> Bool,
        tokens_valid_after -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        oidc_issuer -> Nullable<Text>,
        oidc_subject -> Nullable<Text>,
        phone -> Nullable<Text>,
        phone_verified -> Bool,
        locale -> Text,
    }
}

diesel::table! {
    phone_codes (id) {
        id -> Text,
        user_id -> Text,
        phone -> Text,
        code_hash -> Text,
        tries -> Integer,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    account_tokens (id) {
        id -> Text,
        user_id -> Text,
        kind -> Text,
        email -> Text,
        token_hash -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        user_id -> Text,
        session_id -> Text,
        token_hash -> Text,
        expires_at -> Timestamp,
        rotated_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    cars (id) {
        id -> Text,
        name -> Text,
        brand -> Text,
        brand_key -> Text,
        model -> Text,
        year -> Integer,
        fuel_type -> Text,
        transmission -> Text,
        seats -> Integer,
        price_per_day -> BigInt,
        currency -> Text,
        images -> Text,
        features -> Text,
        latitude -> Double,
        longitude -> Double,
        address -> Text,
        city -> Text,
        city_key -> Text,
        state -> Nullable<Text>,
        country -> Text,
        postal_code -> Nullable<Text>,
        search_text -> Text,
        is_active -> Bool,
        deleted_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        pricing -> Nullable<Text>,
        mileage_limit_km_per_day -> Nullable<Integer>,
        extra_km_price -> Nullable<BigInt>,
        buffer_minutes -> Integer,
        deposit_amount -> BigInt,
        photos -> Text,
    }
}

diesel::table! {
    /// `cars` beyond diesel's 32-column tables: its time zone, read and written on its own.
    #[sql_name = "cars"]
    car_zones (id) {
        id -> Text,
        time_zone -> Nullable<Text>,
    }
}

diesel::table! {
    extras (code) {
        code -> Text,
        name -> Text,
        price_per_day -> Nullable<BigInt>,
        price_per_rental -> Nullable<BigInt>,
        currency -> Text,
        max_quantity -> Integer,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    bookings (id) {
        id -> Text,
        user_id -> Text,
        car_id -> Text,
        pickup_time -> Timestamp,
        dropoff_time -> Timestamp,
        days -> Integer,
        total_price -> BigInt,
        currency -> Text,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        cancelled_at -> Nullable<Timestamp>,
        picked_up_at -> Nullable<Timestamp>,
        returned_at -> Nullable<Timestamp>,
        lines -> Nullable<Text>,
        pickup_record -> Nullable<Text>,
        return_record -> Nullable<Text>,
        day_rate -> Nullable<BigInt>,
        hold_expires_at -> Nullable<Timestamp>,
        balance_due -> BigInt,
        disputed -> Bool,
        payment_method -> Nullable<Text>,
        pickup_reminded_at -> Nullable<Timestamp>,
        return_reminded_at -> Nullable<Timestamp>,
        overdue_reminded_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Text,
        key -> Text,
        request_hash -> Text,
        status_code -> Nullable<Integer>,
        response -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        topic -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        user_id -> Text,
        kind -> Text,
        channel -> Text,
        recipient -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        status -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    push_subscriptions (id) {
        id -> Text,
        user_id -> Text,
        token -> Text,
        platform -> Text,
        created_at -> Timestamp,
        p256dh -> Nullable<Text>,
        auth -> Nullable<Text>,
    }
}

diesel::table! {
    notification_preferences (user_id, channel, kind) {
        user_id -> Text,
        channel -> Text,
        kind -> Text,
        enabled -> Bool,
    }
}

diesel::joinable!(refresh_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, refresh_tokens, sessions);

diesel::table! {
    text_words (word, text) {
        word -> Text,
        text -> Text,
    }
}

diesel::table! {
    word_variants (variant, word) {
        variant -> Text,
        word -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(cars, text_words);

diesel::table! {
    data_versions (name) {
        name -> Text,
        version -> BigInt,
    }
}

diesel::table! {
    car_holds (id) {
        id -> Text,
        car_id -> Text,
        kind -> Text,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    car_counts (active) {
        active -> Bool,
        cars -> BigInt,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        booking_id -> Text,
        user_id -> Text,
        kind -> Text,
        status -> Text,
        amount -> BigInt,
        captured_amount -> BigInt,
        refunded_amount -> BigInt,
        currency -> Text,
        provider -> Text,
        provider_ref -> Nullable<Text>,
        parent_id -> Nullable<Text>,
        reason -> Nullable<Text>,
        client_secret -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(payments, bookings);

diesel::table! {
    payment_setups (id) {
        id -> Text,
        booking_id -> Text,
        user_id -> Text,
        provider -> Text,
        provider_ref -> Nullable<Text>,
        client_secret -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payment_customers (user_id, provider) {
        user_id -> Text,
        provider -> Text,
        customer_ref -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    payment_events (id) {
        id -> Text,
        kind -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    uploads (id) {
        id -> Text,
        user_id -> Text,
        purpose -> Text,
        content_type -> Text,
        size -> BigInt,
        car_id -> Nullable<Text>,
        booking_id -> Nullable<Text>,
        status -> Text,
        width -> Nullable<Integer>,
        height -> Nullable<Integer>,
        sha256 -> Nullable<Text>,
        derivatives -> Nullable<Text>,
        created_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    licences (user_id) {
        user_id -> Text,
        upload_id -> Text,
        object_key -> Text,
        status -> Text,
        note -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}
