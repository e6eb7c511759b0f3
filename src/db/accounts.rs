//! The account directory: rows, lookups, and the changes the desk makes to it.

use super::schema::{account_allowlist, account_dedicated_ips, accounts};
use super::{AnyConnection, now};
use crate::domain::account::{AccountStatus, AccountView};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct AccountRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub email_normalized: String,
    pub status: String,
    pub parent_id: Option<String>,
    pub banned_via_parent: bool,
    pub ip_access_enabled: bool,
    pub balance_due_cents: i64,
    pub terminated_at: Option<NaiveDateTime>,
    pub banned_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl AccountRow {
    pub fn status(&self) -> AccountStatus {
        // The CHECK constraint keeps the column to the four names.
        AccountStatus::parse(&self.status).unwrap_or(AccountStatus::Banned)
    }
}

/// One account as an import line describes it.
#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: String,
    pub username: String,
    pub email: String,
    pub status: AccountStatus,
    pub parent_id: Option<String>,
    pub ip_access_enabled: bool,
    pub allowlist: Vec<String>,
    pub balance_due_cents: i64,
    pub terminated_at: Option<NaiveDateTime>,
    pub banned_at: Option<NaiveDateTime>,
    pub dedicated_ips: Vec<String>,
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<AccountRow>> {
    super::at_most_one(accounts::table.find(id).select(AccountRow::as_select()).load(conn))
}

pub fn find_by_username(conn: &mut AnyConnection, username: &str) -> QueryResult<Option<AccountRow>> {
    accounts::table
        .filter(accounts::username.eq(username))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
}

/// Every account registered to an address (one person may own several).
pub fn find_by_email(conn: &mut AnyConnection, email: &str) -> QueryResult<Vec<AccountRow>> {
    let normalized = crate::domain::email_address::normalize(email);
    on_backend!(conn, |c| accounts::table
        .filter(accounts::email_normalized.eq(&normalized))
        .order(accounts::id.asc())
        .select(AccountRow::as_select())
        .load(c))
}

pub fn view_of(conn: &mut AnyConnection, row: AccountRow) -> QueryResult<AccountView> {
    let mut views = views_of(conn, vec![row])?;
    Ok(views.pop().expect("one view per row"))
}

/// The views of many accounts in a few statements: their allowlists and dedicated IPs each
/// read at once, and every ancestor read once however many of them share it. Why: every
/// received mail reads the views of all accounts registered to its sender, and a company's
/// address on thousands of sub-users cost three statements per account and one per
/// ancestor of each, whoever wrote in that address's name. Same order as `rows`.
pub fn views_of(conn: &mut AnyConnection, rows: Vec<AccountRow>) -> QueryResult<Vec<AccountView>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut allowlists: HashMap<String, Vec<String>> = HashMap::new();
    let mut dedicated: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in ids.chunks(super::MAX_BOUND_IDS) {
        for (account, entry) in per_account(conn, chunk, allowlist_of, allowlists_of)? {
            allowlists.entry(account).or_default().push(entry);
        }
        for (account, ip) in per_account(conn, chunk, dedicated_ips_of, dedicated_ips_of_all)? {
            dedicated.entry(account).or_default().push(ip);
        }
    }
    let mut ancestors = Ancestors::default();
    rows.into_iter()
        .map(|row| {
            let banned_via_parent = row.banned_via_parent || ancestors.chain_banned(conn, row.parent_id.as_deref())?;
            Ok(AccountView {
                status: row.status(),
                allowlist: allowlists.remove(&row.id).unwrap_or_default(),
                dedicated_ips: dedicated.remove(&row.id).unwrap_or_default(),
                id: row.id,
                username: row.username,
                email: row.email,
                parent_id: row.parent_id,
                banned_via_parent,
                ip_access_enabled: row.ip_access_enabled,
                balance_due_cents: row.balance_due_cents,
            })
        })
        .collect()
}

pub fn load_view(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<AccountView>> {
    match find(conn, id)? {
        Some(row) => view_of(conn, row).map(Some),
        None => Ok(None),
    }
}

/// The account a customer named: an id, a username (byte-exact), or a registered email.
pub fn resolve(conn: &mut AnyConnection, reference: &str) -> QueryResult<Option<AccountView>> {
    if reference.is_empty() {
        return Ok(None);
    }
    if let Some(row) = find(conn, reference)? {
        return view_of(conn, row).map(Some);
    }
    if let Some(row) = find_by_username(conn, reference)? {
        return view_of(conn, row).map(Some);
    }
    if reference.contains('@')
        && let Some(row) = find_by_email(conn, reference)?.into_iter().next()
    {
        return view_of(conn, row).map(Some);
    }
    Ok(None)
}

pub fn views_by_email(conn: &mut AnyConnection, email: &str) -> QueryResult<Vec<AccountView>> {
    let rows = find_by_email(conn, email)?;
    views_of(conn, rows)
}

/// The views of the accounts with these ids that exist, in the order given (each once).
pub fn views_by_ids(conn: &mut AnyConnection, ids: &[&str]) -> QueryResult<Vec<AccountView>> {
    let mut found: HashMap<String, AccountRow> = HashMap::new();
    for chunk in ids.chunks(super::MAX_BOUND_IDS) {
        let rows: Vec<AccountRow> = accounts::table
            .filter(accounts::id.eq_any(chunk))
            .select(AccountRow::as_select())
            .load(conn)?;
        found.extend(rows.into_iter().map(|row| (row.id.clone(), row)));
    }
    let rows = ids.iter().filter_map(|id| found.remove(*id)).collect();
    views_of(conn, rows)
}

/// An account's id and one of its values (an allowlist entry, a dedicated IP).
type AccountValue = (String, String);

/// Rows of a few accounts one statement each (`one`: the same text every time, which Diesel
/// keeps prepared; an `IN` list's text changes with its length and is compiled at every use),
/// of many in one statement (`all`).
fn per_account(
    conn: &mut AnyConnection,
    ids: &[&str],
    one: fn(&mut AnyConnection, &str) -> QueryResult<Vec<AccountValue>>,
    all: fn(&mut AnyConnection, &[&str]) -> QueryResult<Vec<AccountValue>>,
) -> QueryResult<Vec<AccountValue>> {
    const FEW: usize = 8;
    if ids.len() > FEW {
        return all(conn, ids);
    }
    let mut rows = vec![];
    for id in ids {
        rows.extend(one(conn, id)?);
    }
    Ok(rows)
}

fn allowlist_of(conn: &mut AnyConnection, id: &str) -> QueryResult<Vec<AccountValue>> {
    account_allowlist::table
        .filter(account_allowlist::account_id.eq(id))
        .order(account_allowlist::added_at.asc())
        .select((account_allowlist::account_id, account_allowlist::entry))
        .load(conn)
}

fn allowlists_of(conn: &mut AnyConnection, ids: &[&str]) -> QueryResult<Vec<AccountValue>> {
    account_allowlist::table
        .filter(account_allowlist::account_id.eq_any(ids))
        .order((account_allowlist::account_id.asc(), account_allowlist::added_at.asc()))
        .select((account_allowlist::account_id, account_allowlist::entry))
        .load(conn)
}

fn dedicated_ips_of(conn: &mut AnyConnection, id: &str) -> QueryResult<Vec<AccountValue>> {
    account_dedicated_ips::table
        .filter(account_dedicated_ips::account_id.eq(id))
        .order(account_dedicated_ips::ip.asc())
        .select((account_dedicated_ips::account_id, account_dedicated_ips::ip))
        .load(conn)
}

fn dedicated_ips_of_all(conn: &mut AnyConnection, ids: &[&str]) -> QueryResult<Vec<AccountValue>> {
    account_dedicated_ips::table
        .filter(account_dedicated_ips::account_id.eq_any(ids))
        .order((account_dedicated_ips::account_id.asc(), account_dedicated_ips::ip.asc()))
        .select((account_dedicated_ips::account_id, account_dedicated_ips::ip))
        .load(conn)
}

/// The ancestors one call has read: for each id, whether it is banned (itself or through
/// its own parent) and its parent; `None` for an id not in the directory.
#[derive(Default)]
struct Ancestors(HashMap<String, Option<(bool, Option<String>)>>);

impl Ancestors {
    /// Walks up the parents: is any ancestor banned? Bounded, so a cycle in imported data
    /// cannot hang the desk.
    fn chain_banned(&mut self, conn: &mut AnyConnection, parent: Option<&str>) -> QueryResult<bool> {
        let mut next: Option<String> = parent.map(str::to_string);
        for _ in 0..16 {
            let Some(id) = next.take() else { return Ok(false) };
            let known = match self.0.get(&id) {
                Some(known) => known.clone(),
                None => {
                    let read = find(conn, &id)?.map(|row| {
                        (
                            row.status() == AccountStatus::Banned || row.banned_via_parent,
                            row.parent_id,
                        )
                    });
                    self.0.insert(id, read.clone());
                    read
                }
            };
            let Some((banned, parent)) = known else {
                return Ok(false);
            };
            if banned {
                return Ok(true);
            }
            next = parent;
        }
        Ok(false)
    }
}

/// Insert or replace an account from the directory. The caller has already refused lines
/// that would lift a ban; the database would refuse them too.
pub fn upsert(conn: &mut AnyConnection, record: &AccountRecord) -> QueryResult<()> {
    let at = now();
    let exists = find(conn, &record.id)?.is_some();
    let email_normalized = crate::domain::email_address::normalize(&record.email);
    if exists {
        diesel::update(accounts::table.find(&record.id))
            .set((
                accounts::username.eq(&record.username),
                accounts::email.eq(&record.email),
                accounts::email_normalized.eq(&email_normalized),
                accounts::status.eq(record.status.as_str()),
                accounts::parent_id.eq(&record.parent_id),
                accounts::ip_access_enabled.eq(record.ip_access_enabled),
                accounts::balance_due_cents.eq(record.balance_due_cents),
                accounts::terminated_at.eq(record.terminated_at),
                accounts::banned_at.eq(record.banned_at),
                accounts::updated_at.eq(at),
            ))
            .execute(conn)?;
    } else {
        diesel::insert_into(accounts::table)
            .values((
                accounts::id.eq(&record.id),
                accounts::username.eq(&record.username),
                accounts::email.eq(&record.email),
                accounts::email_normalized.eq(&email_normalized),
                accounts::status.eq(record.status.as_str()),
                accounts::parent_id.eq(&record.parent_id),
                accounts::banned_via_parent.eq(false),
                accounts::ip_access_enabled.eq(record.ip_access_enabled),
                accounts::balance_due_cents.eq(record.balance_due_cents),
                accounts::terminated_at.eq(record.terminated_at),
                accounts::banned_at.eq(record.banned_at),
                accounts::created_at.eq(at),
                accounts::updated_at.eq(at),
            ))
            .execute(conn)?;
    }
    diesel::delete(account_allowlist::table.filter(account_allowlist::account_id.eq(&record.id))).execute(conn)?;
    for entry in dedup(&record.allowlist) {
        diesel::insert_into(account_allowlist::table)
            .values((
                account_allowlist::account_id.eq(&record.id),
                account_allowlist::entry.eq(entry),
                account_allowlist::source.eq("import"),
                account_allowlist::added_at.eq(at),
            ))
            .execute(conn)?;
    }
    diesel::delete(account_dedicated_ips::table.filter(account_dedicated_ips::account_id.eq(&record.id)))
        .execute(conn)?;
    for ip in dedup(&record.dedicated_ips) {
        diesel::insert_into(account_dedicated_ips::table)
            .values((
                account_dedicated_ips::account_id.eq(&record.id),
                account_dedicated_ips::ip.eq(ip),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn dedup(items: &[String]) -> Vec<&String> {
    let mut seen = std::collections::HashSet::new();
    items.iter().filter(|i| seen.insert(i.as_str())).collect()
}

/// The ids of every descendant of `id` (sub-users, their sub-users, …), each once.
pub fn descendants(conn: &mut AnyConnection, id: &str) -> QueryResult<Vec<String>> {
    let mut found = vec![];
    let mut frontier = vec![id.to_string()];
    let mut seen = std::collections::HashSet::from([id.to_string()]);
    while let Some(parent) = frontier.pop() {
        let children: Vec<String> = accounts::table
            .filter(accounts::parent_id.eq(&parent))
            .select(accounts::id)
            .load(conn)?;
        for child in children {
            if seen.insert(child.clone()) {
                found.push(child.clone());
                frontier.push(child);
            }
        }
    }
    Ok(found)
}

/// Marks every descendant of `id` as banned through its parent; returns the ids newly marked.
pub fn mark_descendants_banned(conn: &mut AnyConnection, id: &str) -> QueryResult<Vec<String>> {
    let mut marked = vec![];
    let mut frontier = vec![id.to_string()];
    let mut seen = std::collections::HashSet::from([id.to_string()]);
    while let Some(parent) = frontier.pop() {
        let children: Vec<(String, bool)> = accounts::table
            .filter(accounts::parent_id.eq(&parent))
            .select((accounts::id, accounts::banned_via_parent))
            .load(conn)?;
        for (child, already) in children {
            if !seen.insert(child.clone()) {
                continue;
            }
            if !already {
                set_banned_via_parent(conn, &child)?;
                marked.push(child.clone());
            }
            frontier.push(child);
        }
    }
    Ok(marked)
}

pub fn set_banned_via_parent(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    diesel::update(accounts::table.find(id))
        .set((accounts::banned_via_parent.eq(true), accounts::updated_at.eq(now())))
        .execute(conn)
        .map(|_| ())
}

/// Adds one entry to an account's allowlist (a grant); an entry already there is kept.
pub fn add_allowlist_entry(conn: &mut AnyConnection, account_id: &str, entry: &str, source: &str) -> QueryResult<bool> {
    let present = account_allowlist::table
        .find((account_id, entry))
        .select(account_allowlist::entry)
        .first::<String>(conn)
        .optional()?
        .is_some();
    if present {
        return Ok(false);
    }
    diesel::insert_into(account_allowlist::table)
        .values((
            account_allowlist::account_id.eq(account_id),
            account_allowlist::entry.eq(entry),
            account_allowlist::source.eq(source),
            account_allowlist::added_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Records a payment: the balance goes down by `amount_cents` (never below zero), computed by
/// the database from the value it holds now, never written back from a value read earlier
/// (an import or another payment may have changed it since). Returns the new balance.
pub fn pay(conn: &mut AnyConnection, account_id: &str, amount_cents: i64) -> QueryResult<i64> {
    let amount = amount_cents.max(0);
    let at = now();
    let paid_down = diesel::update(
        accounts::table
            .find(account_id)
            .filter(accounts::balance_due_cents.ge(amount)),
    )
    .set((
        accounts::balance_due_cents.eq(accounts::balance_due_cents - amount),
        accounts::updated_at.eq(at),
    ))
    .execute(conn)?;
    if paid_down == 0 {
        // More than owed: nothing is owed any more.
        diesel::update(
            accounts::table
                .find(account_id)
                .filter(accounts::balance_due_cents.lt(amount)),
        )
        .set((accounts::balance_due_cents.eq(0i64), accounts::updated_at.eq(at)))
        .execute(conn)?;
    }
    accounts::table
        .find(account_id)
        .select(accounts::balance_due_cents)
        .first(conn)
}

/// The account as [`load_view`] reads it, its row locked for the transaction first (see
/// `db::locks`): what the caller decides on cannot change before it commits.
pub fn load_view_locked(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<AccountView>> {
    super::locks::lock_accounts(conn, &[id])?;
    load_view(conn, id)
}

/// Reactivation after payment: terminated → active. Never touches a banned account (the
/// filter, and the database trigger behind it).
pub fn reactivate(conn: &mut AnyConnection, account_id: &str) -> QueryResult<bool> {
    let changed = diesel::update(
        accounts::table
            .find(account_id)
            .filter(accounts::status.ne("banned"))
            .filter(accounts::banned_via_parent.eq(false)),
    )
    .set((
        accounts::status.eq("active"),
        accounts::terminated_at.eq(None::<NaiveDateTime>),
        accounts::updated_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}
