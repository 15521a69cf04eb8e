//! A managed Garage for supervisor tests: the `[store]` section on free ports and the store
//! as root sees it. Include with `#[path = "support/garage.rs"] mod garage;` beside
//! `#[path = "../../minio/tests/support/mod.rs"] mod s3;` (it uses `crate::s3`).
#![allow(dead_code)]

use std::path::Path;

use clawkeep_store::garage::GarageSecrets;
use clawkeep_store::remote::Store;

pub fn free_port() -> u16 {
    // Garage's RPC port is the S3 port + 1: find a pair that is free.
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < 65000 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

/// The `[store]` section of a managed Garage on free ports, and its S3 port.
pub fn store_section(data_dir: &Path) -> (String, u16) {
    let port = free_port();
    let admin = loop {
        let a = free_port();
        if a != port && a != port + 1 && a + 1 != port {
            break a;
        }
    };
    let text = format!(
        r#"
[store]
managed = {{ kind = "garage", binary = "{bin}", data_dir = "{dir}", port = {port}, admin_port = {admin} }}
debounce = "500ms"
reconcile = "3s"
"#,
        bin = crate::s3::garage_bin().display(),
        dir = data_dir.display(),
    );
    (text, port)
}

/// The store as root sees it, from the secrets clawkeep generated (0600 in the data dir).
pub fn root_store(data_dir: &Path, port: u16) -> Store {
    let secrets: GarageSecrets =
        serde_json::from_slice(&std::fs::read(data_dir.join("secrets.json")).unwrap()).unwrap();
    Store::connect(
        &format!("http://127.0.0.1:{port}"),
        "us-east-1",
        &secrets.root,
    )
}
