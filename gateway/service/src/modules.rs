//! Module operations: upload, deploy (upload + bind), download, garbage collection.

use std::{collections::BTreeSet, time::SystemTime};

use bytes::Bytes;
use xxfunc_api::{DeployResponse, GcResponse, UploadResponse};
use xxfunc_primitives::{FunctionName, ModuleHash};

use crate::{
    Service,
    error::{Result, ServiceError},
    validate::validate_module,
};

impl Service {
    /// Validates and stores a module: 201-style `created: true` when this call stored the
    /// bytes, `false` when they were already there. The upload is recorded in the store,
    /// so the module is safe from [`gc`](Self::gc) for the grace period in any process.
    ///
    /// # Errors
    ///
    /// [`ServiceError::InvalidModule`] (nothing is stored); store failures, e.g.
    /// `StoreError::TooLarge`.
    pub async fn upload(&self, bytes: impl Into<Bytes>) -> Result<UploadResponse> {
        let bytes = bytes.into();
        validate(bytes.clone()).await?;
        let _gc = self.hold().await;
        self.store_module(bytes).await
    }

    /// Uploads a module and binds `name` to it in one step (what `cargo xxfunc deploy`
    /// does offline); garbage collection cannot run between the two.
    ///
    /// # Errors
    ///
    /// As [`upload`](Self::upload) and [`bind`](Self::bind).
    pub async fn deploy(
        &self,
        name: &FunctionName,
        bytes: impl Into<Bytes>,
    ) -> Result<DeployResponse> {
        let bytes = bytes.into();
        validate(bytes.clone()).await?;
        let _gc = self.hold().await;
        let upload = self.store_module(bytes).await?;
        let (name, hash) = (name.clone(), upload.hash);
        let bind = self.registry_call(move |r| r.bind(&name, hash)).await?;
        Ok(DeployResponse { upload, bind })
    }

    /// The bytes of a stored module, by full hash or unique prefix of the stored modules.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Store`]: `InvalidHash`, `NotFound` / `PrefixNotFound`, `Ambiguous`,
    /// `Corrupt`, backend failures.
    pub async fn module(&self, hash: &str) -> Result<(ModuleHash, Bytes)> {
        let store = self.store();
        let hash = store.resolve(hash).await?;
        Ok((hash, store.get(&hash).await?))
    }

    /// Deletes every stored module nothing refers to (no name, version of a name, hash
    /// identity or pin) and that was not uploaded within the grace period; with `dry_run`
    /// only reports them. Also deletes upload records older than the grace period.
    ///
    /// # Errors
    ///
    /// Registry and store failures; modules deleted before a failure stay deleted.
    pub async fn gc(&self, dry_run: bool) -> Result<GcResponse> {
        let _gc = self.exclusive().await;
        let store = self.store();
        // Modules first, then records: `put_recorded` writes the record before the module,
        // so every module listed here has its record in the later listing.
        let stored = store.list().await?;
        let records = store.upload_records().await?;
        let referenced = self.registry_call(|r| r.referenced_hashes()).await?;
        let grace = self.options().upload_grace;
        let now = SystemTime::now();
        // A record from the future (clock skew between hosts) counts as brand new.
        let fresh = |at: SystemTime| now.duration_since(at).unwrap_or_default() < grace;
        let recent: BTreeSet<ModuleHash> = records
            .iter()
            .filter(|r| fresh(r.at))
            .map(|r| r.hash)
            .collect();
        let (mut removed, mut kept) = (Vec::new(), 0u64);
        for hash in stored {
            if referenced.contains(&hash) || recent.contains(&hash) {
                kept += 1;
            } else {
                removed.push(hash);
            }
        }
        if !dry_run {
            for hash in &removed {
                store.delete(hash).await?;
            }
            for record in records.iter().filter(|r| !fresh(r.at)) {
                store.delete_upload_record(&record.hash).await?;
            }
        }
        Ok(GcResponse {
            removed,
            kept,
            dry_run,
        })
    }

    /// Stores a validated module with its upload record. The caller holds off gc.
    async fn store_module(&self, bytes: Bytes) -> Result<UploadResponse> {
        let put = self.store().put_recorded(bytes).await?;
        Ok(UploadResponse {
            hash: put.hash,
            size: put.size,
            created: put.created,
        })
    }
}

/// Validates on a blocking thread: parsing a large module takes milliseconds.
async fn validate(bytes: Bytes) -> Result<()> {
    tokio::task::spawn_blocking(move || validate_module(&bytes))
        .await
        .map_err(ServiceError::Worker)??;
    Ok(())
}
