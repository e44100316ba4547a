use std::collections::HashMap;
use std::time::Duration;

const PASSWORD: &str = "fcr2DxeR-qNjCYsGndZ";

static SENDGRID_KEY: &str = r"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";

let icon_data = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUpZ7rCXJpQSC+g63XEhFqaNwLZmJaQUnCmyYFJcOjLydNbiyyoVInPOE+fdIVtOvMqxl16hsoZO/W7fFadEQ3CNBKwzPOAu9QqqVoro4uxtKFXLjXtiKEqJwawDAnLUaYJ+w0x0PU0coooiFicBTonY=";

// TODO: rotate twilio_key_sid (was SK0805eae5981549fef86c228a05a3f35f)

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}
