//! `dynabuf ls` on real udmabufs held by a forked child: one by fd, one by
//! a mapping whose fd the child closed; `--json --pid` lists exactly them
//! with the child as holder; debugfs adds the attached device and the
//! fences; closed buffers are gone from the listing.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use dynabuf::sys::dma_buf;
use dynabuf_client::kernel::udmabuf;
use serde_json::Value;

use super::{debugfs_mounted, dynabuf_output};
use crate::ensure;
use crate::fixture::vgem;
use crate::harness::{Check, Outcome, TestResult};
use crate::require_kernel_tier;

/// A forked copy of this process that holds one dma-buf by fd (inherited)
/// and another by a mapping only, until dropped (killed and reaped).
struct Holder {
    pid: libc::pid_t,
}

impl Holder {
    /// Forks; the child maps `map` (read-only, shared), closes it, says so
    /// through a pipe and waits to be killed. The parent closes its `map`.
    fn fork(map: OwnedFd, map_len: usize) -> Result<Holder, String> {
        let (r, w) = nix::unistd::pipe().check("pipe")?;
        // SAFETY: fork itself is safe to call; the child below makes only
        // async-signal-safe system calls (mmap, close, write, pause) and
        // never returns, so no state this process shares with other
        // threads is touched in it.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: the child: plain system calls on fds it owns; the
            // mapping is never dereferenced.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    map.as_raw_fd(),
                    0,
                );
                libc::close(map.as_raw_fd());
                let ok: u8 = u8::from(p != libc::MAP_FAILED);
                libc::write(w.as_raw_fd(), (&ok as *const u8).cast(), 1);
                loop {
                    libc::pause();
                }
            }
        }
        drop((map, w));
        let holder = Holder { pid };
        let mut ok = [0u8];
        let n = nix::unistd::read(&r, &mut ok).check("read from the holder")?;
        ensure!(n == 1 && ok[0] == 1, "the holder could not map the dma-buf");
        Ok(holder)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: our own child's pid; kill and waitpid take plain values.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

fn ls_json(args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["ls", "--json"];
    all.extend(args);
    let run = dynabuf_output(&all)?;
    ensure!(run.ok, "dynabuf ls failed: {run:?}");
    serde_json::from_str(&run.stdout).map_err(|e| format!("ls --json: {e}\n{}", run.stdout))
}

fn buffer(listing: &Value, ino: u64) -> Option<&Value> {
    listing["dma_bufs"].as_array()?.iter().find(|b| b["inode"] == ino)
}

fn holder_of(buf: &Value, pid: libc::pid_t) -> Option<&Value> {
    buf["holders"].as_array()?.iter().find(|h| h["pid"] == pid)
}

fn inode(fd: BorrowedFd<'_>) -> Result<u64, String> {
    Ok(dma_buf::identity(fd).check("fstat")?.ino)
}

pub fn ls_finds_udmabufs_a_child_holds_by_fd_and_by_mapping() -> TestResult {
    require_kernel_tier!();
    ensure!(debugfs_mounted(), "no debugfs in the VM");
    let (by_fd, _m1) = udmabuf::create(65536).check("udmabuf")?;
    dma_buf::set_name(by_fd.as_fd(), "cli-by-fd").check("DMA_BUF_SET_NAME")?;
    let (by_map, _m2) = udmabuf::create(131072).check("udmabuf")?;
    let (fd_ino, map_ino) = (inode(by_fd.as_fd())?, inode(by_map.as_fd())?);
    let holder = Holder::fork(by_map, 131072)?;
    let pid = holder.pid;

    let listing = ls_json(&[])?;
    let a = buffer(&listing, fd_ino).ok_or(format!("no inode {fd_ino} in {listing:#}"))?;
    ensure!(a["size"] == 65536 && a["exporter"] == "udmabuf" && a["name"] == "cli-by-fd", "{a:#}");
    let child = holder_of(a, pid).ok_or(format!("child {pid} not a holder: {a:#}"))?;
    ensure!(child["fds"] == serde_json::json!([by_fd.as_raw_fd()]), "{child:#}");
    ensure!(child["mappings"] == serde_json::json!([]), "{child:#}");
    let me = std::process::id() as libc::pid_t;
    ensure!(holder_of(a, me).is_some(), "this process holds it too: {a:#}");

    let b = buffer(&listing, map_ino).ok_or(format!("no inode {map_ino} in {listing:#}"))?;
    // No fd of it is left anywhere: size and exporter come from debugfs.
    ensure!(b["size"] == 131072 && b["exporter"] == "udmabuf" && b["name"].is_null(), "{b:#}");
    let holders = b["holders"].as_array().ok_or("holders")?;
    ensure!(holders.len() == 1 && holders[0]["pid"] == pid, "only the child maps it: {b:#}");
    ensure!(holders[0]["fds"] == serde_json::json!([]), "{b:#}");
    let maps = holders[0]["mappings"].as_array().ok_or("mappings")?;
    ensure!(maps.len() == 1, "{b:#}");
    let len = maps[0]["end"].as_u64().unwrap_or(0) - maps[0]["start"].as_u64().unwrap_or(0);
    ensure!(len == 131072 && maps[0]["perms"] == "r--s" && maps[0]["offset"] == 0, "{b:#}");

    // --pid: the child's two buffers and nothing else.
    let mine = ls_json(&["--pid", &pid.to_string()])?;
    let inodes: Vec<u64> =
        mine["dma_bufs"].as_array().ok_or("dma_bufs")?.iter().filter_map(|b| b["inode"].as_u64()).collect();
    let mut want = vec![fd_ino, map_ino];
    want.sort_unstable();
    ensure!(inodes == want, "ls --pid {pid}: {inodes:?}, expected {want:?}");

    // The table says the same.
    let table = dynabuf_output(&["ls", "--pid", &pid.to_string()])?;
    let row = table.stdout.lines().find(|l| l.starts_with(&format!("{fd_ino} "))).unwrap_or("");
    ensure!(
        row.contains("65536") && row.contains("udmabuf") && row.contains("cli-by-fd"),
        "{}",
        table.stdout
    );
    ensure!(row.contains(&format!("{pid}/")) && row.contains(&format!("fd {}", by_fd.as_raw_fd())), "{row}");
    let row = table.stdout.lines().find(|l| l.starts_with(&format!("{map_ino} "))).unwrap_or("");
    ensure!(row.contains("mmap 1x131072B"), "{}", table.stdout);

    // Closed everywhere: gone.
    drop(holder);
    drop(by_fd);
    let after = ls_json(&[])?;
    ensure!(buffer(&after, fd_ino).is_none() && buffer(&after, map_ino).is_none(), "still listed: {after:#}");
    Ok(Outcome::Pass)
}

pub fn ls_shows_the_attached_device_and_fences_from_debugfs() -> TestResult {
    require_kernel_tier!();
    ensure!(debugfs_mounted(), "no debugfs in the VM");
    let vgem = vgem()?;
    let (buf, _memfd) = udmabuf::create(65536).check("udmabuf")?;
    let ino = inode(buf.as_fd())?;
    let before = ls_json(&[])?;
    let listed = buffer(&before, ino).ok_or("not listed")?;
    ensure!(
        listed["attached"] == serde_json::json!([]) && listed["fences"] == serde_json::json!([]),
        "{listed:#}"
    );

    let handle = vgem.import(buf.as_fd()).check("vgem PRIME import")?;
    let fence = vgem.attach(handle, true).check("vgem fence")?;
    // vgem fences signal themselves after 10 s: look at once.
    let during = ls_json(&[]);
    let signalled = vgem.signal(fence).check("vgem signal");
    let after = ls_json(&[]);
    let _ = vgem.close(handle);
    let (during, after) = (during?, after?);
    signalled?;
    let d = buffer(&during, ino).ok_or("not listed")?;
    let attached = d["attached"].as_array().ok_or("attached")?;
    ensure!(attached.len() == 1 && attached[0].as_str().is_some_and(|a| a.contains("vgem")), "{d:#}");
    let fences: Vec<&str> =
        d["fences"].as_array().ok_or("fences")?.iter().filter_map(Value::as_str).collect();
    ensure!(
        fences.len() == 1 && fences[0].contains("fence:") && fences[0].ends_with("unsignalled"),
        "{fences:?}"
    );
    let a = buffer(&after, ino).ok_or("not listed")?;
    let fences: Vec<&str> =
        a["fences"].as_array().ok_or("fences")?.iter().filter_map(Value::as_str).collect();
    ensure!(fences.iter().all(|f| !f.ends_with("unsignalled")), "signalled: {fences:?}");
    Ok(Outcome::Pass)
}
