//! Real block devices for tests: a loop device over a scratch file (with
//! partitions), an ext4 on it mounted, and that filesystem frozen.
//!
//! Everything is undone in `Drop`, in reverse order and also when the test
//! panics: a frozen filesystem or an attached loop device left behind
//! would block every other test on the machine.

use crate::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} {:?}: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn have(tool: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

/// A loop device over a sparse scratch file, detached on drop.
#[derive(Debug)]
pub struct LoopDevice {
    /// `/dev/loopN`.
    pub dev: PathBuf,
    /// `loopN`.
    pub name: String,
    /// The backing file.
    pub image: PathBuf,
    /// Partitions added (`loopNp1`, …).
    pub partitions: Vec<String>,
    /// The image is this kit's scratch file, removed on drop.
    owns_image: bool,
}

impl LoopDevice {
    /// Attaches a `size_mib` file under `dir` with partition scanning on
    /// (`losetup -P`), and adds the partitions given as (start, length) in
    /// 512-byte sectors with BLKPG (`addpart`): that works on a kernel
    /// without any partition-table parser (CONFIG_*_PARTITION unset).
    pub fn new(dir: &Path, size_mib: u64, partitions: &[(u64, u64)]) -> Result<LoopDevice, Error> {
        if rustix::process::geteuid().as_raw() != 0 {
            return Err(Error::Skip("loop devices need root".into()));
        }
        if !have("losetup") || (!partitions.is_empty() && !have("addpart")) {
            return Err(Error::Skip(
                "losetup/addpart (util-linux) not installed".into(),
            ));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::setup(format!("{}: {e}", dir.display())))?;
        let image = dir.join(format!("loop-{}.img", std::process::id()));
        let f = std::fs::File::create(&image)
            .map_err(|e| Error::setup(format!("{}: {e}", image.display())))?;
        f.set_len(size_mib << 20)
            .map_err(|e| Error::setup(format!("{}: {e}", image.display())))?;
        drop(f);
        let dev = match run(Command::new("losetup")
            .args(["-P", "-f", "--show"])
            .arg(&image))
        {
            Ok(d) => PathBuf::from(d),
            Err(e) => {
                let _ = std::fs::remove_file(&image);
                return Err(Error::Skip(format!("cannot attach a loop device: {e}")));
            }
        };
        let name = dev
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let mut l = LoopDevice {
            dev,
            name,
            image,
            partitions: Vec::new(),
            owns_image: true,
        };
        for (i, (start, len)) in partitions.iter().enumerate() {
            let n = i + 1;
            run(Command::new("addpart")
                .arg(&l.dev)
                .arg(n.to_string())
                .arg(start.to_string())
                .arg(len.to_string()))
            .map_err(Error::Setup)?;
            l.partitions.push(format!("{}p{n}", l.name));
        }
        Ok(l)
    }
}

impl LoopDevice {
    /// Attaches an existing file (on a FUSE mount, say) without partition
    /// scanning, so attaching reads nothing from it. The file is left in
    /// place on drop.
    pub fn attach(file: &Path) -> Result<LoopDevice, Error> {
        if rustix::process::geteuid().as_raw() != 0 {
            return Err(Error::Skip("loop devices need root".into()));
        }
        if !have("losetup") {
            return Err(Error::Skip("losetup (util-linux) not installed".into()));
        }
        let dev = run(Command::new("losetup").args(["-f", "--show"]).arg(file))
            .map(PathBuf::from)
            .map_err(|e| Error::Skip(format!("cannot attach a loop device: {e}")))?;
        let name = dev
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        Ok(LoopDevice {
            dev,
            name,
            image: file.to_path_buf(),
            partitions: Vec::new(),
            owns_image: false,
        })
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = run(Command::new("losetup").arg("-d").arg(&self.dev));
        if self.owns_image {
            let _ = std::fs::remove_file(&self.image);
        }
    }
}

/// An ext4 made on a device and mounted on a scratch directory; unmounted
/// on drop.
#[derive(Debug)]
pub struct Ext4Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    frozen: bool,
}

impl Ext4Mount {
    /// `mkfs.ext4` on `dev` (destroying what is on it) and mounts it.
    pub fn new(dev: &Path, mount_point: &Path) -> Result<Ext4Mount, Error> {
        if !have("mkfs.ext4") {
            return Err(Error::Skip("mkfs.ext4 not installed".into()));
        }
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(dev)).map_err(Error::Setup)?;
        std::fs::create_dir_all(mount_point)
            .map_err(|e| Error::setup(format!("{}: {e}", mount_point.display())))?;
        run(Command::new("mount")
            .args(["-t", "ext4"])
            .arg(dev)
            .arg(mount_point))
        .map_err(|e| Error::Skip(format!("cannot mount ext4: {e}")))?;
        Ok(Ext4Mount {
            mount_point: mount_point.to_path_buf(),
            frozen: false,
        })
    }

    /// `fsfreeze -f`: the superblock goes to SB_FREEZE_COMPLETE. Thawed on
    /// drop (before the unmount, which would otherwise wait).
    pub fn freeze(&mut self) -> Result<(), Error> {
        if !have("fsfreeze") {
            return Err(Error::Skip("fsfreeze (util-linux) not installed".into()));
        }
        run(Command::new("fsfreeze").arg("-f").arg(&self.mount_point)).map_err(Error::Setup)?;
        self.frozen = true;
        Ok(())
    }

    /// `fsfreeze -u`, if frozen.
    pub fn thaw(&mut self) {
        if self.frozen {
            let _ = run(Command::new("fsfreeze").arg("-u").arg(&self.mount_point));
            self.frozen = false;
        }
    }
}

impl Drop for Ext4Mount {
    fn drop(&mut self) {
        self.thaw();
        let _ = run(Command::new("umount").arg(&self.mount_point));
        let _ = std::fs::remove_dir(&self.mount_point);
    }
}
