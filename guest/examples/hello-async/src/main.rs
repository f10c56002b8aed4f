//! `hello` written as `async fn main(event: Event)`: the same output, run on the SDK's
//! executor (no tokio). Its golden output must equal `hello`'s.

use xxfunc::Event;

/// Completes on its second poll, after waking itself, as a yielding future would.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

#[xxfunc::main]
async fn main(event: Event) -> xxfunc::Result<()> {
    YieldOnce(false).await;
    xxfunc::emit(&xxfunc::json!({
        "kind": event.kind().as_str(),
        "number": event.number(),
        "hash": event.hash(),
        "transactions": event.transaction_count(),
    }))
}
