//! The NATS JetStream sink: one message per block on `PREFIX.FUNCTION`
//! (`subject=`, default `xxfunc`; the function's dots and colons become
//! underscores), the batch's JSON ([`Batch::body`]) as payload, headers
//! `Nats-Msg-Id` = [`Batch::idempotency_key`] (JetStream drops a duplicate
//! within the stream's duplicate window) and `Xxfunc-Kind` = `insert` or
//! `retract`. A batch is acknowledged by JetStream's `PublishAck` (a
//! duplicate's ack too).
//!
//! On open it connects and creates the stream (`stream=`, default `XXFUNC`)
//! over `PREFIX.>` if absent, with a two-minute duplicate window; an
//! existing stream is used as it is. Batches without records are
//! acknowledged without a message. Every failure is transient (a batch over
//! the server's payload limit therefore retries until the limit is raised).

use std::time::Duration;

use async_nats::{HeaderMap, jetstream};

use crate::{Batch, BoxFuture, BuildError, DeliveryError, Sink, SinkCursor, SinkSpec};

/// The duplicate window of a stream this sink creates.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Messages on a JetStream stream.
pub struct NatsSink {
    url: String,
    subject: String,
    prefix: String,
    stream: String,
    timeout: Duration,
    context: Option<jetstream::Context>,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("url", &self.url)
            .field("subject", &self.subject)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl NatsSink {
    /// The sink `spec` describes (connected on [`Sink::open`]).
    ///
    /// # Errors
    /// None today; the signature matches the other sinks.
    pub fn from_spec(spec: &SinkSpec) -> Result<Self, BuildError> {
        Ok(Self {
            url: spec.redacted(),
            subject: spec.nats_subject(),
            prefix: spec.subject.clone(),
            stream: spec.stream.clone(),
            timeout: spec.timeout,
            context: None,
        })
    }

    fn described(&self) -> String {
        format!(
            "{} subject {} stream {}",
            self.url, self.subject, self.stream
        )
    }

    async fn connect(&mut self) -> Result<Option<SinkCursor>, DeliveryError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout))
            .connect(self.url.as_str())
            .await
            .map_err(|e| DeliveryError::transient(self.described(), format!("connecting: {e}")))?;
        let context = jetstream::new(client);
        context
            .get_or_create_stream(jetstream::stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{}.>", self.prefix)],
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                DeliveryError::transient(
                    self.described(),
                    format!("creating or reading stream {}: {e}", self.stream),
                )
            })?;
        self.context = Some(context);
        Ok(None)
    }

    async fn publish(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        if batch.records.is_empty() {
            return Ok(());
        }
        if self.context.is_none() {
            self.connect().await?;
        }
        let described = self.described();
        let context = self.context.as_ref().expect("connected above");
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", batch.idempotency_key().as_str());
        headers.insert(
            "Xxfunc-Kind",
            match batch.kind {
                xxfunc_api::outputs::ItemKind::Insert => "insert",
                xxfunc_api::outputs::ItemKind::Retract => "retract",
            },
        );
        let map = |e: jetstream::context::PublishError| {
            DeliveryError::transient(&described, format!("publishing: {e}"))
        };
        let ack = context
            .publish_with_headers(self.subject.clone(), headers, batch.body_bytes().into())
            .await
            .map_err(map)?;
        ack.await.map_err(map)?;
        Ok(())
    }
}

impl Sink for NatsSink {
    fn describe(&self) -> String {
        self.described()
    }

    fn open(&mut self) -> BoxFuture<'_, Result<Option<SinkCursor>, DeliveryError>> {
        Box::pin(self.connect())
    }

    fn deliver<'a>(&'a mut self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.publish(batch))
    }
}
