//! Contract tests of the MinIO grants backend against `FakeMinioAdmin`, a fake of MinIO's admin
//! API (MinIO cannot be installed here; Garage's backend is tested against a real Garage), and
//! known-answer tests of madmin's encrypted-body format against vectors made by madmin-go and
//! sio-go themselves.

#[path = "support/fake_minio_admin.rs"]
mod fake_minio_admin;
#[path = "support/madmin_vectors.rs"]
mod madmin_vectors;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

use aes_gcm::aead::KeyInit;
use clawkeep_store::grants::{Access, Admin, Grant};
use clawkeep_store::grants_minio::{
    policy_name, user_name, MinioAdmin, READ_ACTIONS, WRITE_ACTIONS,
};
use clawkeep_store::madmin_crypto::{self, CryptError};
use clawkeep_store::remote::Credential;
use clawkeep_store::StoreError;
use fake_minio_admin::FakeMinioAdmin;
use serde_json::Value;

const REGION: &str = "eu-test-1";

fn root() -> Credential {
    Credential {
        access_key: "minioroot".into(),
        secret_key: "minioroot-secret-0123456789".into(),
    }
}

fn grant(bucket: &str, access: Access) -> Grant {
    Grant {
        bucket: bucket.into(),
        access,
    }
}

async fn setup() -> (FakeMinioAdmin, MinioAdmin, tempfile::TempDir) {
    let fake = FakeMinioAdmin::start(root(), REGION).await;
    let admin = MinioAdmin::new(fake.url(), REGION, root());
    (fake, admin, tempfile::tempdir().unwrap())
}

/// The policy's grants as bucket → set of actions, checking each statement's shape.
fn granted(policy: &Value) -> BTreeMap<String, BTreeSet<String>> {
    assert_eq!(policy["Version"], "2012-10-17");
    let mut out = BTreeMap::new();
    for s in policy["Statement"].as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow", "{s}");
        let res: Vec<&str> = s["Resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let bucket = res[0].strip_prefix("arn:aws:s3:::").unwrap().to_string();
        assert_eq!(
            res,
            [
                format!("arn:aws:s3:::{bucket}"),
                format!("arn:aws:s3:::{bucket}/*")
            ],
            "{s}"
        );
        let actions = s["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert!(
            out.insert(bucket, actions).is_none(),
            "bucket twice: {policy}"
        );
    }
    out
}

fn ro() -> BTreeSet<String> {
    READ_ACTIONS.iter().map(|a| a.to_string()).collect()
}

fn rw() -> BTreeSet<String> {
    READ_ACTIONS
        .iter()
        .chain(WRITE_ACTIONS.iter())
        .map(|a| a.to_string())
        .collect()
}

#[tokio::test]
async fn ensure_key_creates_a_user_whose_policy_grants_exactly_its_buckets() {
    let (fake, admin, dir) = setup().await;
    for b in ["ck-agent-research", "ck-shared-papers"] {
        assert_eq!(admin.ensure_bucket(b, &root()).await.unwrap(), b);
    }
    // Asking again is fine: the root user already owns it.
    admin
        .ensure_bucket("ck-agent-research", &root())
        .await
        .unwrap();
    let key_file = dir.path().join("research.key");
    let cred = admin
        .ensure_key(
            "research",
            &key_file,
            &[
                grant("ck-agent-research", Access::Rw),
                grant("ck-shared-papers", Access::Ro),
            ],
        )
        .await
        .unwrap();

    assert_eq!(cred.access_key, user_name("research"));
    assert!(cred.secret_key.len() >= 32);
    assert_eq!(Credential::from_file(&key_file).unwrap(), cred);
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let st = fake.state();
    assert_eq!(
        st.buckets,
        BTreeSet::from(["ck-agent-research".into(), "ck-shared-papers".into()])
    );
    let user = &st.users[&cred.access_key];
    assert_eq!(
        user.secret_key, cred.secret_key,
        "MinIO got the saved secret"
    );
    assert_eq!(user.status, "enabled");
    assert_eq!(st.users.len(), 1);
    assert_eq!(
        st.mappings,
        BTreeMap::from([(cred.access_key.clone(), policy_name("research"))])
    );
    let g = granted(&st.policies[&policy_name("research")]);
    assert_eq!(g.len(), 2);
    assert_eq!(g["ck-agent-research"], rw());
    assert_eq!(g["ck-shared-papers"], ro());
    assert!(
        !g["ck-shared-papers"]
            .iter()
            .any(|a| a.contains("Put") || a.contains("Delete")),
        "read-only has no Put/Delete: {g:?}"
    );
    let refused: Vec<_> = st
        .requests
        .iter()
        .filter(|r| r.status >= 300 && r.code != "BucketAlreadyOwnedByYou")
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
}

#[tokio::test]
async fn a_second_call_reuses_the_saved_key() {
    let (fake, admin, dir) = setup().await;
    let key_file = dir.path().join("a.key");
    let grants = [grant("ck-agent-a", Access::Rw)];
    let first = admin.ensure_key("a", &key_file, &grants).await.unwrap();
    let second = admin.ensure_key("a", &key_file, &grants).await.unwrap();
    assert_eq!(first, second);
    let st = fake.state();
    assert_eq!(st.ok_calls("add-user"), 1, "the user was not made again");
    assert_eq!(st.ok_calls("user-info"), 1, "the saved key was looked up");
    assert_eq!(st.users.len(), 1);

    // MinIO lost the user (or someone removed it): it is added again with the saved secret.
    fake.edit(|s| {
        s.users.clear();
        s.mappings.clear();
    });
    let third = admin.ensure_key("a", &key_file, &grants).await.unwrap();
    assert_eq!(third, first);
    let st = fake.state();
    assert_eq!(st.users[&first.access_key].secret_key, first.secret_key);
    assert_eq!(st.mappings[&first.access_key], policy_name("a"));
}

#[tokio::test]
async fn a_changed_grant_replaces_the_policy() {
    let (fake, admin, dir) = setup().await;
    let key_file = dir.path().join("b.key");
    let cred = admin
        .ensure_key(
            "b",
            &key_file,
            &[
                grant("ck-agent-b", Access::Rw),
                grant("ck-shared-x", Access::Rw),
                grant("ck-shared-y", Access::Ro),
            ],
        )
        .await
        .unwrap();
    assert_eq!(granted(&fake.state().policies[&policy_name("b")]).len(), 3);

    // x becomes read-only, y is revoked.
    admin
        .ensure_key(
            "b",
            &key_file,
            &[
                grant("ck-agent-b", Access::Rw),
                grant("ck-shared-x", Access::Ro),
            ],
        )
        .await
        .unwrap();
    let st = fake.state();
    let g = granted(&st.policies[&policy_name("b")]);
    assert_eq!(
        g,
        BTreeMap::from([("ck-agent-b".into(), rw()), ("ck-shared-x".into(), ro())])
    );
    assert_eq!(
        st.mappings[&cred.access_key],
        policy_name("b"),
        "one policy, replaced"
    );

    // Some other policy attached by hand is replaced too: the mapping is exactly clawkeep's.
    fake.edit(|s| {
        s.policies.insert("extra".into(), serde_json::json!({}));
        s.mappings.insert(
            cred.access_key.clone(),
            format!("{},extra", policy_name("b")),
        );
    });
    admin
        .ensure_key("b", &key_file, &[grant("ck-agent-b", Access::Rw)])
        .await
        .unwrap();
    assert_eq!(fake.state().mappings[&cred.access_key], policy_name("b"));

    // No grants at all: the user keeps no policy.
    admin.ensure_key("b", &key_file, &[]).await.unwrap();
    assert!(!fake.state().mappings.contains_key(&cred.access_key));
}

#[tokio::test]
async fn the_same_bucket_twice_gets_the_wider_access() {
    let (fake, admin, dir) = setup().await;
    admin
        .ensure_key(
            "c",
            &dir.path().join("c.key"),
            &[
                grant("ck-shared-z", Access::Ro),
                grant("ck-shared-z", Access::Rw),
            ],
        )
        .await
        .unwrap();
    let g = granted(&fake.state().policies[&policy_name("c")]);
    assert_eq!(g, BTreeMap::from([("ck-shared-z".into(), rw())]));
}

fn admin_error(e: StoreError) -> (String, String) {
    let text = e.to_string();
    match e {
        StoreError::Admin { url, .. } => (url, text),
        other => panic!("not an admin error: {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_secret_is_a_clear_admin_error() {
    let fake = FakeMinioAdmin::start(root(), REGION).await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = Credential {
        access_key: root().access_key,
        secret_key: "not-the-root-secret".into(),
    };
    let admin = MinioAdmin::new(fake.url(), REGION, wrong);
    let e = admin
        .ensure_key("d", &dir.path().join("d.key"), &[grant("b", Access::Ro)])
        .await
        .unwrap_err();
    let (url, text) = admin_error(e);
    assert_eq!(url, format!("{}/minio/admin/v3", fake.url()));
    assert!(text.contains(&url), "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(text.contains("secret key is wrong"), "{text}");
    assert!(
        !dir.path().join("d.key").exists(),
        "no key saved for a user never made"
    );
    assert!(fake.state().users.is_empty());
}

#[tokio::test]
async fn a_wrong_access_key_or_region_is_a_clear_admin_error() {
    let fake = FakeMinioAdmin::start(root(), REGION).await;
    let stranger = Credential {
        access_key: "someone".into(),
        secret_key: root().secret_key,
    };
    let (_, text) = admin_error(
        MinioAdmin::new(fake.url(), REGION, stranger)
            .user_info("x")
            .await
            .unwrap_err(),
    );
    assert!(text.contains("InvalidAccessKeyId"), "{text}");
    assert!(text.contains("MINIO_ROOT_USER"), "{text}");

    let (_, text) = admin_error(
        MinioAdmin::new(fake.url(), "us-east-1", root())
            .user_info("x")
            .await
            .unwrap_err(),
    );
    assert!(text.contains("AuthorizationHeaderMalformed"), "{text}");
    assert!(text.contains("region"), "{text}");
}

#[tokio::test]
async fn no_server_is_a_clear_admin_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (named, text) = admin_error(
        MinioAdmin::new(&url, REGION, root())
            .user_info("x")
            .await
            .unwrap_err(),
    );
    assert_eq!(named, format!("{url}/minio/admin/v3"));
    assert!(text.contains("is MinIO running"), "{text}");
}

#[tokio::test]
async fn an_s3_server_without_minio_admin_api_is_named_as_such() {
    // Garage (and other S3 servers) take /minio/... for a bucket named "minio" and answer
    // 404 NoSuchBucket in S3's XML.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::NOT_FOUND,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchBucket</Code><Message>Bucket not found: minio</Message></Error>",
        )
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let (_, text) = admin_error(
        MinioAdmin::new(&url, REGION, root())
            .user_info("x")
            .await
            .unwrap_err(),
    );
    server.abort();
    assert!(
        text.contains("404 Not Found NoSuchBucket: Bucket not found: minio"),
        "{text}"
    );
    assert!(text.contains("no MinIO admin API v3"), "{text}");
}

#[tokio::test]
async fn the_fake_refuses_what_minio_refuses() {
    let (fake, admin, _dir) = setup().await;
    // Unsigned: MinIO's admin API wants SigV4 with x-amz-content-sha256.
    let r = reqwest::Client::new()
        .get(format!(
            "{}/minio/admin/v3/user-info?accessKey=x",
            fake.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("AccessDenied"));

    // A policy MinIO would not parse.
    let bad = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:Fly"], "Resource": ["arn:aws:s3:::b"]}]});
    let (_, text) = admin_error(admin.add_canned_policy("p", &bad).await.unwrap_err());
    assert!(text.contains("XMinioMalformedIAMPolicy"), "{text}");
    let no_version = serde_json::json!({"Statement": []});
    let (_, text) = admin_error(admin.add_canned_policy("p", &no_version).await.unwrap_err());
    assert!(text.contains("MalformedPolicy"), "{text}");

    // Attaching to a user MinIO does not know, or a policy it does not have.
    let (_, text) = admin_error(admin.set_user_policy("ghost", "p").await.unwrap_err());
    assert!(text.contains("XMinioAdminNoSuchUser"), "{text}");
    admin
        .add_user(&Credential {
            access_key: "someone".into(),
            secret_key: "long-enough-secret".into(),
        })
        .await
        .unwrap();
    let (_, text) = admin_error(admin.set_user_policy("someone", "nope").await.unwrap_err());
    assert!(text.contains("XMinioAdminNoSuchPolicy"), "{text}");
    // MinIO's secret-key rule (8 characters at least).
    let (_, text) = admin_error(
        admin
            .add_user(&Credential {
                access_key: "other".into(),
                secret_key: "short".into(),
            })
            .await
            .unwrap_err(),
    );
    assert!(text.contains("XMinioAdminInvalidSecretKey"), "{text}");
    assert_eq!(admin.user_info("ghost").await.unwrap(), None);
}

#[test]
fn admin_enum_enforces_minio_grants() {
    assert!(Admin::Minio(MinioAdmin::new("http://127.0.0.1:9000", REGION, root())).enforced());
}

#[test]
fn encrypt_decrypt_round_trips() {
    // Sizes around sio's 16 KiB fragments.
    for len in [0usize, 1, 100, 16384, 16385, 40000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let sealed = madmin_crypto::encrypt_data("s3cr3t-key", &data).unwrap();
        assert!(madmin_crypto::is_encrypted(&sealed));
        assert_eq!(sealed[32], madmin_crypto::ARGON2ID_AES_GCM);
        assert_eq!(sealed.len(), 41 + len + 16 * len.div_ceil(16384).max(1));
        assert_eq!(
            madmin_crypto::decrypt_data("s3cr3t-key", &sealed).unwrap(),
            data
        );
        if len == 100 {
            assert_eq!(
                madmin_crypto::decrypt_data("other-key", &sealed),
                Err(CryptError::NotAuthentic)
            );
        }
    }
    let sealed = madmin_crypto::encrypt_data("k", b"{\"secretKey\":\"x\"}").unwrap();
    let mut flipped = sealed.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(
        madmin_crypto::decrypt_data("k", &flipped),
        Err(CryptError::NotAuthentic)
    );
    let mut fips = sealed.clone();
    fips[32] = madmin_crypto::PBKDF2_AES_GCM;
    assert_eq!(
        madmin_crypto::decrypt_data("k", &fips),
        Err(CryptError::Algorithm(2))
    );
    assert_eq!(
        madmin_crypto::decrypt_data("k", &sealed[..50]),
        Err(CryptError::TooShort(50))
    );
    // Two encryptions of the same data differ (fresh salt and nonce).
    assert_ne!(
        sealed,
        madmin_crypto::encrypt_data("k", b"{\"secretKey\":\"x\"}").unwrap()
    );
}

#[test]
fn chacha20_bodies_decrypt_too() {
    // madmin writes id 0x01 on CPUs without AES instructions; build one by hand.
    let salt = [3u8; 32];
    let nonce = [4u8; 8];
    let aes = madmin_crypto::encrypt_data_with("pw", &salt, &nonce, b"hello").unwrap();
    // madmin's key for this salt, with the argon2 crate and madmin's parameters; it must be
    // the key under which the AES body above was sealed.
    let params = argon2::Params::new(64 * 1024, 1, 4, Some(32)).unwrap();
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(b"pw", &salt, &mut key)
        .unwrap();
    let aead = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
    let stream =
        madmin_crypto::sio_seal(&aead, madmin_crypto::SIO_BUF_SIZE, &nonce, &[], b"hello").unwrap();
    assert_eq!(&aes[41..], &stream[..]);
    let chacha = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key).unwrap();
    let stream =
        madmin_crypto::sio_seal(&chacha, madmin_crypto::SIO_BUF_SIZE, &nonce, &[], b"hello")
            .unwrap();
    let body = [
        &salt[..],
        &[madmin_crypto::ARGON2ID_CHACHA20_POLY1305],
        &nonce,
        &stream,
    ]
    .concat();
    assert_eq!(madmin_crypto::decrypt_data("pw", &body).unwrap(), b"hello");
}

#[test]
fn madmin_go_ciphertexts_decrypt_and_re_encrypt_byte_for_byte() {
    for (password, len, hex_body) in madmin_vectors::MADMIN_VECTORS {
        let body = hex::decode(hex_body).unwrap();
        assert!(madmin_crypto::is_encrypted(&body));
        let plain = madmin_crypto::decrypt_data(password, &body)
            .unwrap_or_else(|e| panic!("vector of {len} bytes: {e}"));
        assert_eq!(plain, vec![0u8; *len], "madmin encrypted zeros");
        // Same salt and nonce give madmin's exact bytes: the encryption side is madmin's too.
        let salt: [u8; 32] = body[..32].try_into().unwrap();
        let nonce: [u8; 8] = body[33..41].try_into().unwrap();
        let again = madmin_crypto::encrypt_data_with(password, &salt, &nonce, &plain).unwrap();
        assert_eq!(hex::encode(again), *hex_body);
        if *len == 32 {
            assert_eq!(
                madmin_crypto::decrypt_data("wrong", &body),
                Err(CryptError::NotAuthentic)
            );
        }
    }
}

#[test]
fn sio_go_vectors_match() {
    for (alg, buf, key, nonce, ad, plain, cipher) in madmin_vectors::SIO_VECTORS {
        let [key, nonce, ad, plain, cipher] =
            [key, nonce, ad, plain, cipher].map(|h| hex::decode(h).unwrap());
        let (sealed, opened) = match *alg {
            "AES-128-GCM" => {
                let a = aes_gcm::Aes128Gcm::new_from_slice(&key).unwrap();
                (
                    madmin_crypto::sio_seal(&a, *buf, &nonce, &ad, &plain),
                    madmin_crypto::sio_open(&a, *buf, &nonce, &ad, &cipher),
                )
            }
            "XChaCha20-Poly1305" => {
                let a = chacha20poly1305::XChaCha20Poly1305::new_from_slice(&key).unwrap();
                (
                    madmin_crypto::sio_seal(&a, *buf, &nonce, &ad, &plain),
                    madmin_crypto::sio_open(&a, *buf, &nonce, &ad, &cipher),
                )
            }
            other => panic!("unknown algorithm {other}"),
        };
        assert_eq!(
            hex::encode(sealed.unwrap()),
            hex::encode(&cipher),
            "{alg} seal"
        );
        assert_eq!(opened.unwrap(), plain, "{alg} open");
    }
}
