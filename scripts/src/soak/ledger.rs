//! The end-of-run check of orders-api's SQLite file, read directly (the service is stopped):
//! every order acknowledged with 201 exists, with its owner and product; no creation happened
//! twice for one Idempotency-Key (each key's product text is unique, so two rows with it are a
//! duplicate); every order a user was shown is its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row};

use super::record::Acknowledged;

#[derive(Debug, Default)]
pub struct Findings {
    pub acknowledged: usize,
    pub lost: Vec<String>,
    pub changed_owner: Vec<String>,
    pub duplicated: Vec<String>,
    pub shown_checked: usize,
    pub leaked: Vec<String>,
}

pub async fn check(
    database: &Path,
    acknowledged: &[Acknowledged],
    shown: &[(String, String)],
) -> anyhow::Result<Findings> {
    let mut db = SqliteConnectOptions::new().filename(database).read_only(true).connect().await?;
    let rows = sqlx::query("SELECT id, owner_oid, product FROM orders").fetch_all(&mut db).await?;
    let mut orders: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut per_product: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows {
        let (id, owner, product): (String, String, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        *per_product.entry(product.clone()).or_default() += 1;
        orders.insert(id, (owner, product));
    }
    let mut findings = Findings { acknowledged: acknowledged.len(), ..Findings::default() };
    for a in acknowledged {
        match orders.get(&a.id) {
            None => findings.lost.push(format!("{} (key {})", a.id, a.idempotency_key)),
            Some((owner, _)) if *owner != a.owner_oid => findings.changed_owner.push(a.id.clone()),
            Some((_, product)) if *product != a.product => findings.lost.push(format!("{} is {product:?}", a.id)),
            Some(_) => {}
        }
        if per_product.get(&a.product).copied().unwrap_or_default() > 1 {
            findings.duplicated.push(format!("{:?} (key {})", a.product, a.idempotency_key));
        }
    }
    let shown: BTreeSet<&(String, String)> = shown.iter().collect();
    findings.shown_checked = shown.len();
    for (oid, id) in shown {
        if orders.get(id).is_some_and(|(owner, _)| owner != oid) {
            findings.leaked.push(format!("{id} shown to {oid}"));
        }
    }
    findings.duplicated.sort();
    findings.duplicated.dedup();
    Ok(findings)
}
