// scratch: write a bundle for manual testing
use supervisor::sandbox::bundle::*;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let p = SandboxPlan {
        name: "smoke".into(),
        rootfs: a[1].clone().into(),
        home: a[2].clone().into(),
        cgroup: "clawkeep-smoke/smoke".into(),
        host_id: 1_000_000_000,
        args: a[4..].to_vec(),
        env: vec![],
        cpu: 0.5,
        memory: 64 << 20,
        pids: 64,
        nofile: 1024,
        tmp_size: 16 << 20,
    };
    let s = spec(&p).unwrap();
    prepare_rootfs(&s).unwrap();
    prepare_home(&p.home, p.host_id).unwrap();
    write(std::path::Path::new(&a[3]), &s).unwrap();
}
