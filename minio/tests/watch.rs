//! The change watcher under an agent's hand: a symlink it plants is never followed (root
//! would otherwise watch the host's tree), and a home with too many directories is not
//! watched at all (the reconcile timer covers it) instead of using up the node's watches.

mod support;

use std::path::Path;
use std::time::Duration;

use clawkeep_store::watch::Watch;
use support::watches;

#[test]
fn a_symlink_to_the_hosts_tree_in_a_renamed_directory_is_not_followed() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    std::fs::create_dir_all(home.join("t/d")).unwrap();
    // /usr holds thousands of directories on any Debian.
    std::os::unix::fs::symlink("/usr", home.join("t/d/s")).unwrap();
    let _w = Watch::new(&home, 2000).unwrap();
    let before = watches();
    assert!(before <= 3, "{before} watches for 3 directories");
    // Moving the directory makes the watcher add it (and what is below it) again.
    std::fs::rename(home.join("t"), home.join("t2")).unwrap();
    std::fs::create_dir(home.join("t2/new")).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let after = watches();
    assert!(
        after <= before + 3,
        "{after} watches after the rename (was {before}): the link was followed"
    );
}

#[test]
fn a_home_with_more_directories_than_the_cap_is_left_to_the_reconcile_timer() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..60 {
        std::fs::create_dir_all(d.path().join(format!("a/{i}"))).unwrap();
    }
    let Err(e) = Watch::new(d.path(), 50) else {
        panic!("watched more directories than allowed");
    };
    assert!(e.to_string().contains("more than 50 directories"), "{e}");
    assert_eq!(
        clawkeep_store::watch::count_dirs(d.path(), 1000).unwrap(),
        62
    );
    assert_eq!(
        clawkeep_store::watch::count_dirs(Path::new("/"), 10).unwrap(),
        11
    );
}
