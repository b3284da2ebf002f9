//! Unit tests of `sys`.

use super::*;
use std::os::unix::fs::{PermissionsExt, symlink};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn creates_both_levels_private_and_cleans_up_inside_only() {
    let t = tmp();
    let dir = t.path().join("base").join("sys");
    let d = PrivateDir::open(&dir).unwrap();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    std::io::Write::write_all(&mut d.file("a.sock", FileHow::Truncate).unwrap(), b"x").unwrap();
    let outside = t.path().join("victim.sock");
    std::fs::write(&outside, b"keep").unwrap();
    symlink(&outside, dir.join("link.sock")).unwrap();
    d.remove_files(|n| n.ends_with(".sock"));
    assert!(outside.exists(), "a file outside the directory was removed");
    assert!(!dir.join("a.sock").exists() && !dir.join("link.sock").exists());
    d.remove();
    assert!(!dir.exists() && t.path().join("base").exists());
}

#[test]
fn a_planted_symlink_is_refused_and_its_target_untouched() {
    let t = tmp();
    let target = t.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::create_dir(t.path().join("base")).unwrap();
    // The system directory is a link...
    symlink(&target, t.path().join("base").join("sys")).unwrap();
    let e = PrivateDir::open(&t.path().join("base").join("sys")).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    // ...or the base directory is.
    symlink(&target, t.path().join("base2")).unwrap();
    let e = PrivateDir::open(&t.path().join("base2").join("sys")).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o777, "the link's target was chmodded");
    assert!(!target.join("sys").exists());
}

#[test]
fn a_parent_others_can_write_to_is_refused() {
    let t = tmp();
    let base = t.path().join("open");
    std::fs::create_dir(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = PrivateDir::open(&base.join("sys")).unwrap_err();
    assert!(e.to_string().contains("others may write"), "{e}");
    // Sticky, as /tmp is: fine.
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o1777)).unwrap();
    PrivateDir::open(&base.join("sys")).unwrap().remove();
}

#[test]
fn shared_words_are_seen_through_another_mapping_and_survive_it() {
    let t = tmp();
    let path = t.path().join("w");
    let f = create_new(&path).unwrap();
    f.set_len(4096).unwrap();
    let writer = SharedWords::map(&f, 512, true).unwrap();
    let reader = SharedWords::map(&open_read_only(&path).unwrap(), 512, false).unwrap();
    writer.store(3, 7);
    writer.add(3, 2);
    assert_eq!(reader.load(3), 9);
    reader.store(3, 0);
    assert_eq!(reader.load(3), 9, "a read-only mapping wrote");
    drop(writer);
    assert_eq!(reader.load(3), 9);
    assert!(SharedWords::map(&f, 513, false).is_err());
}

#[test]
fn a_file_that_is_a_link_is_not_followed() {
    let t = tmp();
    let d = PrivateDir::open(&t.path().join("b").join("s")).unwrap();
    let outside = t.path().join("secret");
    std::fs::write(&outside, b"keep").unwrap();
    symlink(&outside, d.path().join("system.log")).unwrap();
    assert!(d.file("system.log", FileHow::Append).is_err());
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
}
