//! Which processes hold which dma-bufs, from `/proc`: open fds whose link
//! is a dma-buf's (`/dmabuf:NAME`, or `anon_inode:dmabuf` on older
//! kernels) with their fdinfo (`size`, `exp_name`, `name`, `ino`), and
//! mappings of `/dmabuf:NAME` in `/proc/PID/maps` (inode column).
//!
//! Processes come and go while we read: a process or fd that vanished is
//! skipped without a word; a process whose fds or maps we may not read
//! (another user's, without root) is counted as unreadable.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

/// One mapping of a dma-buf in a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rw-s` and the like.
    pub perms: String,
    /// The offset into the buffer, in bytes.
    pub offset: u64,
}

/// One process holding a dma-buf.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: i32,
    /// `/proc/PID/comm`.
    pub command: String,
    /// The fd numbers naming the buffer.
    pub fds: Vec<i32>,
    pub mappings: Vec<Mapping>,
}

/// A dma-buf as the processes holding it show it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub size: Option<u64>,
    pub exporter: Option<String>,
    pub name: Option<String>,
    pub holders: Vec<Holder>,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// By inode.
    pub buffers: BTreeMap<u64, Seen>,
    /// Processes whose fds or maps could not be read.
    pub unreadable: usize,
    /// Processes read.
    pub processes: usize,
}

/// Whether an fd's link target is a dma-buf's.
pub fn is_dma_buf_link(target: &str) -> bool {
    target.starts_with("/dmabuf:") || target == "anon_inode:dmabuf"
}

/// The name in a dma-buf's link or mapping path (`/dmabuf:NAME`).
fn name_in_path(path: &str) -> Option<String> {
    path.strip_prefix("/dmabuf:").map(str::trim).filter(|n| !n.is_empty()).map(str::to_string)
}

/// The `ino:` line of fdinfo text.
pub fn fdinfo_inode(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("ino:")).and_then(|v| v.trim().parse().ok())
}

/// The dma-buf mappings of `/proc/PID/maps` text: (inode, mapping, name).
pub fn parse_maps(text: &str) -> Vec<(u64, Mapping, Option<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        // start-end perms offset dev inode path (the path may hold spaces).
        let mut fields = line.splitn(6, char::is_whitespace);
        let (Some(range), Some(perms), Some(offset), Some(_dev), Some(inode), Some(rest)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = rest.trim_start();
        if !path.starts_with("/dmabuf:") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else { continue };
        let parsed = (
            u64::from_str_radix(start, 16),
            u64::from_str_radix(end, 16),
            u64::from_str_radix(offset, 16),
            inode.parse::<u64>(),
        );
        if let (Ok(start), Ok(end), Ok(offset), Ok(inode)) = parsed {
            out.push((inode, Mapping { start, end, perms: perms.to_string(), offset }, name_in_path(path)));
        }
    }
    out
}

/// Why a read failed: the process is gone (skip), or we may not look.
fn denied(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::PermissionDenied
}

/// Keeps the first known value.
fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// The holder entry of `pid` for the buffer `ino`.
fn holder<'a>(scan: &'a mut Scan, ino: u64, pid: i32, command: &str) -> (&'a mut Seen, usize) {
    let seen = scan.buffers.entry(ino).or_default();
    let i = match seen.holders.iter().position(|h| h.pid == pid) {
        Some(i) => i,
        None => {
            seen.holders.push(Holder { pid, command: command.to_string(), ..Holder::default() });
            seen.holders.len() - 1
        }
    };
    (seen, i)
}

/// What reading a process gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Read,
    /// It went away while we read.
    Gone,
    /// We may not read its fds or maps.
    Refused,
}

/// Reads one process's dma-buf fds and mappings into `scan`.
fn scan_process(proc_dir: &Path, pid: i32, scan: &mut Scan) -> Outcome {
    let dir = proc_dir.join(pid.to_string());
    let command = match std::fs::read_to_string(dir.join("comm")) {
        Ok(c) => c.trim_end().to_string(),
        Err(e) if denied(&e) => String::new(),
        Err(_) => return Outcome::Gone,
    };
    let mut refused = false;
    match std::fs::read_dir(dir.join("fd")) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                let Ok(target) = std::fs::read_link(entry.path()) else { continue };
                let target = target.to_string_lossy();
                if !is_dma_buf_link(&target) {
                    continue;
                }
                // Gone between readdir and here: skip it.
                let Ok(text) = std::fs::read_to_string(dir.join("fdinfo").join(fd.to_string())) else {
                    continue;
                };
                let ino =
                    fdinfo_inode(&text).or_else(|| std::fs::metadata(entry.path()).ok().map(|m| m.ino()));
                let Some(ino) = ino else { continue };
                let info = dynabuf::sys::dma_buf::parse_fdinfo(&text);
                let (seen, i) = holder(scan, ino, pid, &command);
                if let Some(info) = info {
                    fill(&mut seen.size, Some(info.size));
                    fill(&mut seen.exporter, Some(info.exporter));
                    fill(&mut seen.name, info.name);
                }
                fill(&mut seen.name, name_in_path(&target));
                seen.holders[i].fds.push(fd);
            }
        }
        Err(e) if denied(&e) => refused = true,
        Err(_) => return Outcome::Gone,
    }
    match std::fs::read_to_string(dir.join("maps")) {
        Ok(text) => {
            for (ino, mapping, name) in parse_maps(&text) {
                let (seen, i) = holder(scan, ino, pid, &command);
                fill(&mut seen.name, name);
                seen.holders[i].mappings.push(mapping);
            }
        }
        Err(e) if denied(&e) => refused = true,
        Err(_) => {}
    }
    if refused {
        Outcome::Refused
    } else {
        Outcome::Read
    }
}

/// Every dma-buf the processes under `proc_dir` (normally `/proc`) hold
/// that this user may see.
pub fn scan(proc_dir: &Path) -> Scan {
    let mut scan = Scan::default();
    let Ok(entries) = std::fs::read_dir(proc_dir) else { return scan };
    let mut pids: Vec<i32> =
        entries.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect();
    pids.sort_unstable();
    for pid in pids {
        match scan_process(proc_dir, pid, &mut scan) {
            Outcome::Read => scan.processes += 1,
            Outcome::Refused => scan.unreadable += 1,
            Outcome::Gone => {}
        }
    }
    for seen in scan.buffers.values_mut() {
        seen.holders.sort_by_key(|h| h.pid);
        for h in &mut seen.holders {
            h.fds.sort_unstable();
            h.mappings.sort_by_key(|m| m.start);
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_buf_links_and_mappings_are_recognised() {
        assert!(is_dma_buf_link("/dmabuf:") && is_dma_buf_link("/dmabuf:frames"));
        assert!(is_dma_buf_link("anon_inode:dmabuf"));
        assert!(!is_dma_buf_link("/memfd:dynabuf (deleted)") && !is_dma_buf_link("anon_inode:sync_file"));
        let maps = "\
7f0000000000-7f0000010000 rw-s 00000000 00:0d 1234                       /dmabuf:
7f0000010000-7f0000011000 r--s 00001000 00:0d 77                         /dmabuf:my frames
7f0000020000-7f0000021000 rw-s 00000000 00:01 99                         /memfd:x (deleted)
garbage
7f0000030000-7f0000031000 rw-p 00000000 00:00 0 \n";
        let found = parse_maps(maps);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0],
            (
                1234,
                Mapping { start: 0x7f00_0000_0000, end: 0x7f00_0001_0000, perms: "rw-s".into(), offset: 0 },
                None
            )
        );
        assert_eq!(found[1].0, 77);
        assert_eq!(found[1].1.offset, 0x1000);
        assert_eq!(found[1].2.as_deref(), Some("my frames"));
        assert_eq!(fdinfo_inode("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t4321\nsize:\t4096\n"), Some(4321));
        assert_eq!(fdinfo_inode("pos: 0\n"), None);
    }

    #[test]
    fn a_fake_proc_tree_is_read_and_a_vanished_process_skipped() {
        let root = std::env::temp_dir().join(format!("dynabuf-proc-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let p = root.join("42");
        std::fs::create_dir_all(p.join("fd")).unwrap();
        std::fs::create_dir_all(p.join("fdinfo")).unwrap();
        std::fs::write(p.join("comm"), "client\n").unwrap();
        std::os::unix::fs::symlink("/dmabuf:frames", p.join("fd/5")).unwrap();
        std::os::unix::fs::symlink("/memfd:x (deleted)", p.join("fd/6")).unwrap();
        std::fs::write(
            p.join("fdinfo/5"),
            "pos:\t0\nino:\t77\nsize:\t65536\nexp_name:\tudmabuf\nname:\tframes\n",
        )
        .unwrap();
        std::fs::write(p.join("maps"), "7f0000010000-7f0000020000 rw-s 00000000 00:0d 77 /dmabuf:frames\n")
            .unwrap();
        // A pid directory with nothing in it: the process went away.
        std::fs::create_dir_all(root.join("43")).unwrap();
        std::fs::create_dir_all(root.join("self")).unwrap();
        let scan = scan(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!((scan.processes, scan.unreadable), (1, 0));
        assert_eq!(scan.buffers.len(), 1);
        let seen = &scan.buffers[&77];
        assert_eq!(
            (seen.size, seen.exporter.as_deref(), seen.name.as_deref()),
            (Some(65536), Some("udmabuf"), Some("frames"))
        );
        assert_eq!(seen.holders.len(), 1);
        assert_eq!((seen.holders[0].pid, seen.holders[0].command.as_str()), (42, "client"));
        assert_eq!(seen.holders[0].fds, vec![5]);
        assert_eq!(seen.holders[0].mappings.len(), 1);
    }
}
