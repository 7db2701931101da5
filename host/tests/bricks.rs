//! The loop brick backend on the real thing: a sparse file, a loop device,
//! XFS and a mount, created, repeated, interrupted and destroyed.

use aplo::exec::brick::{self, BrickRoot};
use aplo::exec::command::{Cmd, Executor, NodeExecutor, Transport};
use aplo::model::Id;

async fn stdout(node: &NodeExecutor, cmd: Cmd) -> String {
    String::from_utf8(node.run(&cmd).await.unwrap().stdout).unwrap()
}

#[tokio::test]
async fn a_loop_brick_is_a_real_filesystem_and_leaves_nothing_behind() {
    let node = NodeExecutor::new("local", Transport::Local);
    let dir = tempfile::tempdir().unwrap();
    let root = BrickRoot::new(dir.path()).unwrap();
    let (id, volume) = (Id(0xb0b), Id(0x701));

    // A brick below the smallest XFS (an arbiter) gets the minimum.
    let small = Id(0x5);
    brick::create_loop_brick(&*node, &root, small, volume, 100 << 20)
        .await
        .expect("needs root, losetup and mkfs.xfs (xfsprogs)");
    let image = std::fs::metadata(root.image(small)).unwrap().len();
    assert_eq!(image, brick::MIN_XFS_BYTES);
    brick::destroy_loop_brick(&*node, &root, small)
        .await
        .unwrap();
    assert!(!root.image(small).exists());

    let brick_dir = brick::create_loop_brick(&*node, &root, id, volume, 512 << 20)
        .await
        .expect("needs root, losetup and mkfs.xfs (xfsprogs)");
    let mount = root.mount_point(id);
    let fstype = stdout(
        &node,
        Cmd::new("findmnt")
            .args(["-n", "-o", "FSTYPE,OPTIONS", "--mountpoint"])
            .arg(mount.display().to_string()),
    )
    .await;
    assert!(
        fstype.starts_with("xfs") && fstype.contains("noatime") && fstype.contains("inode64"),
        "{fstype}"
    );
    let size: u64 = stdout(
        &node,
        Cmd::new("df")
            .args(["--output=size", "-B1"])
            .arg(mount.display().to_string()),
    )
    .await
    .lines()
    .nth(1)
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    assert!(
        size > 400 << 20 && size <= 512 << 20,
        "a filesystem of the brick's size, not the host's: {size}"
    );
    assert!(brick_dir.is_dir());
    let marker = std::fs::read_to_string(root.marker(id)).unwrap();
    assert!(
        marker.contains(&id.to_string()) && marker.contains(&volume.to_string()),
        "{marker}"
    );
    std::fs::write(brick_dir.join("data"), "I love GlusterFS!").unwrap();

    // Repeating the creation changes nothing and keeps the data.
    brick::create_loop_brick(&*node, &root, id, volume, 512 << 20)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(brick_dir.join("data")).unwrap(),
        "I love GlusterFS!"
    );

    // A crash after unmounting: creating again finishes the job.
    node.run(&Cmd::new("umount").arg(mount.display().to_string()))
        .await
        .unwrap();
    brick::create_loop_brick(&*node, &root, id, volume, 512 << 20)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(brick_dir.join("data")).unwrap(),
        "I love GlusterFS!"
    );

    brick::destroy_loop_brick(&*node, &root, id).await.unwrap();
    brick::destroy_loop_brick(&*node, &root, id)
        .await
        .expect("destroying twice is fine");
    assert!(!mount.exists() && !root.image(id).exists());
    let loops = stdout(&node, Cmd::new("losetup").arg("-a")).await;
    assert!(
        !loops.contains(&root.image(id).display().to_string()),
        "no loop device is left: {loops}"
    );
}

#[tokio::test]
async fn a_dir_brick_is_a_marked_directory_and_goes_away_whole() {
    let node = NodeExecutor::new("local", Transport::Local);
    let dir = tempfile::tempdir().unwrap();
    let root = BrickRoot::new(dir.path()).unwrap();
    let (id, volume) = (Id(0xd1), Id(0x702));
    let brick_dir = brick::create_dir_brick(&*node, &root, id, volume)
        .await
        .unwrap();
    brick::create_dir_brick(&*node, &root, id, volume)
        .await
        .expect("repeatable");
    assert!(brick_dir.is_dir());
    assert!(
        std::fs::read_to_string(root.marker(id))
            .unwrap()
            .contains(&volume.to_string())
    );
    std::fs::write(brick_dir.join("data"), "x").unwrap();
    brick::destroy_dir_brick(&*node, &root, id).await.unwrap();
    brick::destroy_dir_brick(&*node, &root, id)
        .await
        .expect("repeatable");
    assert!(!root.mount_point(id).exists());
}
