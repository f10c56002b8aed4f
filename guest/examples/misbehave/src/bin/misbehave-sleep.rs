//! Asks to sleep for 60 s, then emits how long its clocks say it slept. The runner answers
//! the sleep at once on its virtual clock, so the invocation stays within its wall-time
//! limit.

use std::time::{Duration, Instant, SystemTime};

#[xxfunc::main]
fn main(event: xxfunc::Event) -> xxfunc::Result<()> {
    let wall = SystemTime::now();
    let monotonic = Instant::now();
    std::thread::sleep(Duration::from_secs(60));
    let wall_ms = SystemTime::now()
        .duration_since(wall)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    xxfunc::emit(&xxfunc::json!({
        "number": event.number(),
        "slept_monotonic_ms": monotonic.elapsed().as_millis() as u64,
        "slept_wall_ms": wall_ms as u64,
    }))
}
