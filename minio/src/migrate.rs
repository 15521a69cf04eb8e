//! Moving buckets to another store (another node's MinIO or Garage): every object copied
//! through this node, blobs verified against their hash on the way.

use std::path::Path;

use crate::error::StoreError;
use crate::keys::BLOB_PREFIX;
use crate::progress::PassProgress;
use crate::remote::Remote;

/// What a bucket copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Copied {
    /// Source bucket.
    pub from: String,
    /// Target bucket.
    pub to: String,
    /// Objects copied.
    pub objects: usize,
    /// Bytes copied.
    pub bytes: u64,
    /// Immutable objects (blobs, snapshots) the target already had.
    pub skipped: usize,
}

/// Copy every object of `src` into `dst` (which must exist), staging each in `tmp`. Blobs
/// and snapshots never change once written, so those the target has are skipped and a
/// copy that was interrupted can simply be run again. `progress` counts the bucket's
/// objects in once listed, and each as it is copied (or found there already).
pub async fn copy_bucket(
    src: &Remote,
    dst: &Remote,
    tmp: &Path,
    progress: &PassProgress,
) -> Result<Copied, StoreError> {
    let mut out = Copied {
        from: src.name().into(),
        to: dst.name().into(),
        ..Default::default()
    };
    let have: std::collections::BTreeSet<String> = dst
        .list(crate::keys::META_PREFIX)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    std::fs::create_dir_all(tmp).map_err(|e| StoreError::io("create", tmp, e))?;
    let objects = src.list("").await?;
    progress.plan_more(objects.len() as u64, objects.iter().map(|o| o.size).sum());
    for o in objects {
        if o.key.starts_with(crate::keys::META_PREFIX) && have.contains(&o.key) {
            out.skipped += 1;
            progress.done(o.size);
            continue;
        }
        let staged = tmp.join(format!("{:016x}", rand::random::<u64>()));
        let want = o.key.strip_prefix(BLOB_PREFIX);
        src.get_to_file(&o.key, &staged, want, None).await?;
        let r = dst.put_file(&o.key, &staged).await;
        let _ = std::fs::remove_file(&staged);
        let bytes = r?;
        progress.done(bytes);
        out.bytes += bytes;
        out.objects += 1;
    }
    Ok(out)
}
