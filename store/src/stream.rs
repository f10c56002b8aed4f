//! [`ModuleStream`]: a module read chunk by chunk and verified at the end.

use std::{
    fmt,
    io::Read,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::{Stream, StreamExt, stream::BoxStream};
use object_store::path::Path;

use crate::{
    error::{Result, StoreError, StoreOp},
    hash::ModuleHash,
};

/// Chunk size for reading modules from local files.
const FILE_CHUNK: usize = 1 << 20;

/// The bytes of one module, as returned by
/// [`ModuleStore::get_stream`](crate::ModuleStore::get_stream).
///
/// Every chunk is hashed as it passes. When the backend's stream ends, the hash is compared:
/// on a match the stream ends; otherwise it yields one final [`StoreError::Corrupt`].
/// **Do not trust any chunk until the stream has ended without an error.**
pub struct ModuleStream {
    inner: BoxStream<'static, object_store::Result<Bytes>>,
    hasher: blake3::Hasher,
    hash: ModuleHash,
    key: Path,
    store: String,
    done: bool,
}

impl ModuleStream {
    pub(crate) fn new(
        inner: BoxStream<'static, object_store::Result<Bytes>>,
        hash: ModuleHash,
        key: Path,
        store: String,
    ) -> Self {
        Self {
            inner,
            hasher: blake3::Hasher::new(),
            hash,
            key,
            store,
            done: false,
        }
    }

    /// The module being read.
    pub fn hash(&self) -> ModuleHash {
        self.hash
    }
}

impl fmt::Debug for ModuleStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleStream")
            .field("hash", &self.hash)
            .field("key", &self.key)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Stream for ModuleStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match this.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                this.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(source))) => {
                this.done = true;
                let err = match source {
                    object_store::Error::NotFound { .. } => {
                        StoreError::NotFound { hash: this.hash }
                    }
                    source => StoreError::Backend {
                        op: StoreOp::Get,
                        key: this.key.to_string(),
                        store: this.store.clone(),
                        source,
                    },
                };
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.done = true;
                if ModuleHash::from(this.hasher.finalize()) == this.hash {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(StoreError::Corrupt {
                        hash: this.hash,
                        key: this.key.to_string(),
                    })))
                }
            }
        }
    }
}

/// Reads a local file in 1 MiB chunks on Tokio's blocking pool (object_store's own file
/// stream uses 8 KiB chunks, one blocking task each).
pub(crate) fn read_file_chunks(
    file: std::fs::File,
    path: std::path::PathBuf,
) -> impl Stream<Item = object_store::Result<Bytes>> + Send + 'static {
    futures::stream::try_unfold(file, move |mut file| {
        let path = path.clone();
        async move {
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = Vec::with_capacity(FILE_CHUNK);
                let n = (&mut file).take(FILE_CHUNK as u64).read_to_end(&mut buf)?;
                Ok::<_, std::io::Error>((file, buf, n))
            })
            .await;
            let generic =
                |source: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: format!("reading {}: {source}", path.display()).into(),
                };
            match read {
                Err(join) => Err(generic(Box::new(join))),
                Ok(Err(io)) => Err(generic(Box::new(io))),
                Ok(Ok((_, _, 0))) => Ok(None),
                Ok(Ok((file, buf, _))) => Ok(Some((Bytes::from(buf), file))),
            }
        }
    })
}
