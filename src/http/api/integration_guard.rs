//! One integration per number: Twilio posts a number's messages to one SmsUrl, so a second
//! integration on the same number would silently take the number over at its `setup`, and
//! deleting either would leave the other unanswered. A create or update that would put a
//! number already used by another integration is refused with 409, naming that integration.
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::store::resource::Resource;
use crate::store::schema::TWILIO;
use crate::store::Param;

/// Refuses `cols` when they set a `phone_number` another integration (not `own`) has.
pub async fn number_free(
    state: &AppState,
    res: &Resource,
    cols: &[(&'static str, Param)],
    own: Option<&str>,
) -> ApiResult<()> {
    if !std::ptr::eq(res, &TWILIO) {
        return Ok(());
    }
    let number = cols.iter().find_map(|(col, value)| match (col, value) {
        (&"phone_number", Param::Text(Some(number))) => Some(number.as_str()),
        _ => None,
    });
    let Some(number) = number else {
        return Ok(());
    };
    match state.db.integration_on_number(number, own).await? {
        None => Ok(()),
        Some((id, name)) => {
            let named = if name.is_empty() {
                String::new()
            } else {
                format!(" \"{name}\"")
            };
            Err(ApiError::conflict(format!(
                "The number {number} is already used by integration{named} ({id}): Twilio sends a number's messages to one integration. Delete that integration or change its phoneNumber first"
            )))
        }
    }
}
