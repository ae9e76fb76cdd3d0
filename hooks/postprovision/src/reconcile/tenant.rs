//! Who the sign-in is: it must be for the deployment's tenant (the first read of every run,
//! before any write), and it may be a user (who sponsors agent identities and gets app roles).

use reqwest::Method;
use serde_json::Value;

use super::error::RunError;
use super::run::Run;
use crate::rest::NotFound;

#[tracing::instrument(skip_all, fields(tenant = %run.id.tenant_id))]
pub async fn check(run: &Run<'_>) -> Result<(), RunError> {
    let orgs: Vec<Value> = run.list("organization", &[]).await?;
    let signed_in = orgs.first().and_then(|o| o.get("id")).and_then(Value::as_str).unwrap_or_default().to_string();
    if !signed_in.eq_ignore_ascii_case(&run.id.tenant_id) {
        return Err(RunError::WrongTenant { signed_in, expected: run.id.tenant_id.clone() });
    }
    Ok(())
}

/// The signed-in user's object id; `None` when the sign-in is an application (`/me` refused).
#[tracing::instrument(skip_all)]
pub async fn signed_in_user(run: &Run<'_>) -> Result<Option<String>, RunError> {
    match run.graph.send(Method::GET, "me", &[], None, NotFound::Error).await {
        Ok(answer) => Ok(answer.body.and_then(|b| b.get("id").and_then(Value::as_str).map(str::to_string))),
        Err(e) if matches!(e.status(), Some(400..=499)) => Ok(None),
        Err(e) => Err(run.stopped(&e)),
    }
}
