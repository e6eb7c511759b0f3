//! Small key/value facts the instances of one database share (the generated secret key).

use super::AnyConnection;
use super::schema::settings;
use diesel::prelude::*;

pub fn get(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<String>> {
    super::at_most_one(on_backend!(conn, |c| settings::table
        .find(key)
        .select(settings::value)
        .load(c)))
}

/// Returns the stored value, or stores `make()` if there is none. Two instances racing on a
/// fresh database both end up with the value that won the insert.
pub fn get_or_insert(conn: &mut AnyConnection, key: &str, make: impl FnOnce() -> String) -> QueryResult<String> {
    if let Some(value) = get(conn, key)? {
        return Ok(value);
    }
    let inserted = diesel::insert_into(settings::table)
        .values((settings::key.eq(key), settings::value.eq(make())))
        .execute(conn);
    match inserted {
        Ok(_) | Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            get(conn, key)?.ok_or(diesel::result::Error::NotFound)
        }
        Err(e) => Err(e),
    }
}
