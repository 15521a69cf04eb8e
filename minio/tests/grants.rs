//! Grants enforced by a real Garage through its admin API v2: each agent's key reaches its
//! own bucket read-write and its shared collections exactly as granted, nothing else.

mod support;

use bytes::Bytes;
use clawkeep_store::grants::{Access, Grant};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_grant_is_enforced_by_the_store() {
    let g = Garage::start().await;
    for b in ["ck-agent-customer", "ck-agent-research", "ck-shared-docs"] {
        g.bucket(b).await;
    }
    let dir = tempfile::tempdir().unwrap();
    // The collection's curator (a read-write holder) publishes it.
    write(&dir.path().join("curated"), "faq.md", b"shared");
    syncer(
        g.root().bucket("ck-shared-docs"),
        &dir.path().join("curated"),
        "curator",
    )
    .sync(false)
    .await
    .unwrap();
    let key_file = dir.path().join("customer.key");
    let grants = [
        Grant {
            bucket: "ck-agent-customer".into(),
            access: Access::Rw,
        },
        Grant {
            bucket: "ck-shared-docs".into(),
            access: Access::Ro,
        },
    ];
    let cred = g
        .admin
        .ensure_key("customer", &key_file, &grants)
        .await
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().mode() & 0o777, 0o600);
    let store = g.store(&cred);

    store
        .bucket("ck-agent-customer")
        .put("SOUL.md", Bytes::from_static(b"mine"))
        .await
        .unwrap();
    assert_eq!(
        &store
            .bucket("ck-shared-docs")
            .get_bytes("faq.md")
            .await
            .unwrap()[..],
        b"shared"
    );
    let err = store
        .bucket("ck-shared-docs")
        .put("faq.md", Bytes::from_static(b"overwrite"))
        .await
        .unwrap_err();
    assert_eq!(err.s3_code(), Some("AccessDenied"), "{err}");
    assert!(
        err.to_string().contains("read-only"),
        "the message explains: {err}"
    );
    let err = store
        .bucket("ck-shared-docs")
        .delete("faq.md")
        .await
        .unwrap_err();
    assert_eq!(err.s3_code(), Some("AccessDenied"), "{err}");
    // Another agent's brain is not even visible.
    let err = store
        .bucket("ck-agent-research")
        .list("")
        .await
        .unwrap_err();
    assert!(
        matches!(err.s3_code(), Some("AccessDenied" | "NoSuchBucket")),
        "{err}"
    );

    // The same key is reused on the next start, and a changed grant takes effect.
    let again = g
        .admin
        .ensure_key(
            "customer",
            &key_file,
            &[Grant {
                bucket: "ck-agent-customer".into(),
                access: Access::Rw,
            }],
        )
        .await
        .unwrap();
    assert_eq!(again, cred);
    let err = store.bucket("ck-shared-docs").list("").await.unwrap_err();
    assert!(
        matches!(err.s3_code(), Some("AccessDenied" | "NoSuchBucket")),
        "revoked: {err}"
    );

    // A sync with a read-only grant never writes, even if the local copy changed.
    g.admin
        .ensure_key("customer", &key_file, &grants)
        .await
        .unwrap();
    let ws = dir.path().join("docs");
    let s = syncer(store.bucket("ck-shared-docs"), &ws, "customer").read_only(true);
    s.pull_into_place().await.unwrap();
    assert_eq!(std::fs::read(ws.join("faq.md")).unwrap(), b"shared");
    write(&ws, "faq.md", b"local scribble");
    let r = s.sync(false).await.unwrap();
    assert!(!r.pushed, "{r:?}");
    assert_eq!(
        std::fs::read(ws.join("faq.md")).unwrap(),
        b"shared",
        "the store's version wins on a read-only grant"
    );
}
