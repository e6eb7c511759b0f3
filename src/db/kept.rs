//! Statements Diesel keeps prepared although it would not: an `UPDATE`, or SQL of our own.
//!
//! Why: Diesel compiles every `UPDATE` and every `sql_query` again at each use (it cannot tell
//! whether their text varies), and SQLite compiles a statement on `tickets` together with
//! its triggers. A decision's `UPDATE` of the ticket took 96 µs to compile against 8 µs to
//! run, and statement compilation was 12 % of `import-maildir`'s writing thread
//! (docs/benchmarks.md, "Statements per message"). A [`Kept`] statement is written from
//! fixed pieces of SQL and bound values: the same pieces give the same text, so Diesel's
//! statement cache may keep it, keyed by that text.

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Integer, Nullable, Text, Timestamp, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// One value bound to a statement.
#[derive(Debug, Clone, Copy)]
pub(in crate::db) enum Value<'a> {
    Text(&'a str),
    OptionalText(Option<&'a str>),
    BigInt(i64),
    OptionalBigInt(Option<i64>),
    Integer(i32),
    Bool(bool),
    Timestamp(NaiveDateTime),
    OptionalTimestamp(Option<NaiveDateTime>),
}

#[derive(Debug, Clone)]
enum Piece<'a> {
    Sql(&'static str),
    Bind(Value<'a>),
}

/// A statement of fixed SQL pieces and bound values (placeholders are the backend's own).
/// Its text depends only on the pieces, never on a value: that is what lets it be kept.
#[derive(Debug, Clone, Default)]
pub(in crate::db) struct Kept<'a> {
    pieces: Vec<Piece<'a>>,
}

impl<'a> Kept<'a> {
    pub(in crate::db) fn sql(mut self, sql: &'static str) -> Self {
        self.pieces.push(Piece::Sql(sql));
        self
    }

    pub(in crate::db) fn bind(mut self, value: Value<'a>) -> Self {
        self.pieces.push(Piece::Bind(value));
        self
    }
}

impl<DB> QueryFragment<DB> for Kept<'_>
where
    DB: Backend
        + HasSqlType<Text>
        + HasSqlType<BigInt>
        + HasSqlType<Integer>
        + HasSqlType<Bool>
        + HasSqlType<Timestamp>,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    i32: ToSql<Integer, DB>,
    bool: ToSql<Bool, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // Never `out.unsafe_to_cache_prepared()`: the text is the pieces', whatever the values.
        for piece in &self.pieces {
            match piece {
                Piece::Sql(sql) => out.push_sql(sql),
                Piece::Bind(value) => match value {
                    Value::Text(v) => out.push_bind_param::<Text, str>(v)?,
                    Value::OptionalText(v) => out.push_bind_param::<Nullable<Text>, Option<&str>>(v)?,
                    Value::BigInt(v) => out.push_bind_param::<BigInt, i64>(v)?,
                    Value::OptionalBigInt(v) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(v)?,
                    Value::Integer(v) => out.push_bind_param::<Integer, i32>(v)?,
                    Value::Bool(v) => out.push_bind_param::<Bool, bool>(v)?,
                    Value::Timestamp(v) => out.push_bind_param::<Timestamp, NaiveDateTime>(v)?,
                    Value::OptionalTimestamp(v) => {
                        out.push_bind_param::<Nullable<Timestamp>, Option<NaiveDateTime>>(v)?
                    }
                },
            }
        }
        Ok(())
    }
}

/// No static id: Diesel keys the prepared statement by its text and the types bound.
impl QueryId for Kept<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Rows are read by name (`QueryableByName`), as from `sql_query`.
impl Query for Kept<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Kept<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::AnyConnection;
    use diesel::connection::{Connection, Instrumentation, InstrumentationEvent, SimpleConnection};
    use diesel::prelude::*;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Seen {
        run: usize,
        prepared: usize,
    }

    struct Count(Arc<Mutex<Seen>>);

    impl Instrumentation for Count {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            let mut seen = self.0.lock().expect("not poisoned");
            match event {
                InstrumentationEvent::StartQuery { .. } => seen.run += 1,
                InstrumentationEvent::CacheQuery { .. } => seen.prepared += 1,
                _ => {}
            }
        }
    }

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = Nullable<Text>)]
        note: Option<String>,
    }

    fn update<'a>(n: i64, note: Option<&'a str>, id: i64) -> Kept<'a> {
        Kept::default()
            .sql("UPDATE t SET n = ")
            .bind(Value::BigInt(n))
            .sql(", note = ")
            .bind(Value::OptionalText(note))
            .sql(" WHERE id = ")
            .bind(Value::BigInt(id))
    }

    #[test]
    fn an_update_is_prepared_once_and_runs_with_each_value() {
        let mut conn = AnyConnection::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap());
        conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, note TEXT); INSERT INTO t VALUES (1, 0, NULL), (2, 0, NULL);")
            .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        conn.set_instrumentation(Count(seen.clone()));
        assert_eq!(update(7, Some("seven"), 1).execute(&mut conn).unwrap(), 1);
        assert_eq!(update(8, None, 2).execute(&mut conn).unwrap(), 1);
        assert_eq!(update(9, Some("nine"), 3).execute(&mut conn).unwrap(), 0);
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.run, 3);
            assert_eq!(seen.prepared, 1, "kept after its first use");
        }
        let select = |id: i64| {
            Kept::default()
                .sql("SELECT n, note FROM t WHERE id = ")
                .bind(Value::BigInt(id))
        };
        let rows: Vec<Row> = select(1).load(&mut conn).unwrap();
        assert_eq!(
            rows,
            vec![Row {
                n: 7,
                note: Some("seven".into())
            }]
        );
        let rows: Vec<Row> = select(2).load(&mut conn).unwrap();
        assert_eq!(rows, vec![Row { n: 8, note: None }]);
        assert_eq!(seen.lock().unwrap().prepared, 2, "the select too, once");
    }
}
