//! The first read of every run: the sign-in must be for the deployment's tenant, checked before
//! any write.

use serde_json::Value;

use super::error::RunError;
use super::run::Run;

#[tracing::instrument(skip_all, fields(tenant = %run.id.tenant_id))]
pub async fn check(run: &Run<'_>) -> Result<(), RunError> {
    let orgs: Vec<Value> = run.list("organization", &[]).await?;
    let signed_in = orgs.first().and_then(|o| o.get("id")).and_then(Value::as_str).unwrap_or_default().to_string();
    if !signed_in.eq_ignore_ascii_case(&run.id.tenant_id) {
        return Err(RunError::WrongTenant { signed_in, expected: run.id.tenant_id.clone() });
    }
    Ok(())
}
