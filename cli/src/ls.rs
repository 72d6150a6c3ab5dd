//! `dynabuf ls`: every dma-buf this user can see, like lsof: inode, size,
//! exporter, name and the processes holding it (fds and mappings), plus
//! attached devices and fences where debugfs is readable. A text table, or
//! JSON with `--json`.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::bufinfo;
use crate::proc_scan::{self, Holder};

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Only the dma-bufs this process holds (every holder of each is still
    /// listed).
    #[arg(long, value_name = "PID")]
    pid: Option<i32>,
}

/// One dma-buf, as `--json` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DmaBuf {
    pub inode: u64,
    pub size: Option<u64>,
    pub exporter: Option<String>,
    pub name: Option<String>,
    pub holders: Vec<Holder>,
    /// Devices attached to it (debugfs only; `null` when unreadable).
    pub attached: Option<Vec<String>>,
    /// Its fences (debugfs only; `null` when unreadable).
    pub fences: Option<Vec<String>>,
}

/// The whole listing.
#[derive(Debug, Default, Serialize)]
pub struct Listing {
    pub dma_bufs: Vec<DmaBuf>,
    /// Processes read.
    pub processes: usize,
    /// Processes whose fds or maps this user may not read (skipped).
    pub unreadable_processes: usize,
    /// Whether `/sys/kernel/debug/dma_buf/bufinfo` was read.
    pub debugfs: bool,
}

/// Joins what `/proc` and debugfs say.
pub fn collect(proc_dir: &Path, pid: Option<i32>) -> Listing {
    let scan = proc_scan::scan(proc_dir);
    let debugfs = bufinfo::read();
    let mut by_inode: std::collections::BTreeMap<u64, DmaBuf> = scan
        .buffers
        .into_iter()
        .map(|(inode, s)| {
            let buf = DmaBuf {
                inode,
                size: s.size,
                exporter: s.exporter,
                name: s.name,
                holders: s.holders,
                attached: None,
                fences: None,
            };
            (inode, buf)
        })
        .collect();
    if let Some(list) = &debugfs {
        for (inode, listed) in list {
            let buf = by_inode.entry(*inode).or_insert_with(|| DmaBuf { inode: *inode, ..DmaBuf::default() });
            buf.size = buf.size.or(Some(listed.info.size));
            buf.exporter = buf.exporter.take().or_else(|| Some(listed.info.exporter.clone()));
            buf.name = buf.name.take().or_else(|| listed.name.clone());
            buf.attached = Some(listed.info.attached.clone());
            buf.fences = Some(listed.fences.clone());
        }
    }
    let mut dma_bufs: Vec<DmaBuf> = by_inode.into_values().collect();
    if let Some(pid) = pid {
        dma_bufs.retain(|b| b.holders.iter().any(|h| h.pid == pid));
    }
    Listing {
        dma_bufs,
        processes: scan.processes,
        unreadable_processes: scan.unreadable,
        debugfs: debugfs.is_some(),
    }
}

/// A holder as the table shows it: `PID COMMAND fd N,M map K`.
fn holder_text(h: &Holder) -> String {
    let mut s = format!("{}/{}", h.pid, if h.command.is_empty() { "?" } else { &h.command });
    if !h.fds.is_empty() {
        let fds: Vec<String> = h.fds.iter().map(i32::to_string).collect();
        s.push_str(&format!(" fd {}", fds.join(",")));
    }
    if !h.mappings.is_empty() {
        let bytes: u64 = h.mappings.iter().map(|m| m.end.saturating_sub(m.start)).sum();
        s.push_str(&format!(" mmap {}x{bytes}B", h.mappings.len()));
    }
    s
}

fn or_dash(v: Option<&str>) -> &str {
    v.filter(|s| !s.is_empty()).unwrap_or("-")
}

/// The table.
pub fn table(listing: &Listing) -> String {
    let mut rows = vec![[
        "INODE".to_string(),
        "SIZE".to_string(),
        "EXPORTER".to_string(),
        "NAME".to_string(),
        "HOLDERS".to_string(),
    ]];
    let mut extra: Vec<Vec<String>> = vec![Vec::new()];
    for b in &listing.dma_bufs {
        let holders: Vec<String> = b.holders.iter().map(holder_text).collect();
        rows.push([
            b.inode.to_string(),
            b.size.map_or("-".to_string(), |s| s.to_string()),
            or_dash(b.exporter.as_deref()).to_string(),
            or_dash(b.name.as_deref()).to_string(),
            if holders.is_empty() { "(no process)".to_string() } else { holders.join("; ") },
        ]);
        let mut lines = Vec::new();
        if let Some(a) = b.attached.as_ref().filter(|a| !a.is_empty()) {
            lines.push(format!("attached: {}", a.join(", ")));
        }
        for f in b.fences.iter().flatten() {
            lines.push(f.clone());
        }
        extra.push(lines);
    }
    let widths: Vec<usize> = (0..4).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (row, lines) in rows.iter().zip(&extra) {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c < 4 {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        for l in lines {
            out.push_str(&format!("{:indent$}{l}\n", "", indent = widths[0] + 2));
        }
    }
    let total: u64 = listing.dma_bufs.iter().filter_map(|b| b.size).sum();
    out.push_str(&format!(
        "{} dma-buf(s), {total} bytes; {} process(es) read, {} not readable by this user (skipped){}\n",
        listing.dma_bufs.len(),
        listing.processes,
        listing.unreadable_processes,
        if listing.debugfs {
            ""
        } else {
            "; no attachments or fences: /sys/kernel/debug/dma_buf/bufinfo not readable (root, debugfs mounted)"
        }
    ));
    out
}

pub fn main(args: LsArgs) -> ExitCode {
    if let Some(pid) = args.pid {
        if !Path::new("/proc").join(pid.to_string()).exists() {
            eprintln!("dynabuf ls: no process {pid}");
            return ExitCode::FAILURE;
        }
    }
    let listing = collect(Path::new("/proc"), args.pid);
    if args.json {
        match serde_json::to_string_pretty(&listing) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("dynabuf ls: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", table(&listing));
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc_scan::Mapping;

    #[test]
    fn the_table_has_a_row_per_buffer_its_debugfs_lines_and_a_footer() {
        let listing = Listing {
            dma_bufs: vec![DmaBuf {
                inode: 77,
                size: Some(65536),
                exporter: Some("udmabuf".into()),
                name: None,
                holders: vec![Holder {
                    pid: 42,
                    command: "client".into(),
                    fds: vec![5, 7],
                    mappings: vec![Mapping { start: 0x1000, end: 0x11000, perms: "rw-s".into(), offset: 0 }],
                }],
                attached: Some(vec!["vgem".into()]),
                fences: Some(vec!["write fence: vgem vgem_fence seq 1 unsignalled".into()]),
            }],
            processes: 10,
            unreadable_processes: 3,
            debugfs: true,
        };
        let text = table(&listing);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("INODE  SIZE   EXPORTER  NAME  HOLDERS"), "{text}");
        assert_eq!(lines[1], "77     65536  udmabuf   -     42/client fd 5,7 mmap 1x65536B");
        assert_eq!(lines[2].trim(), "attached: vgem");
        assert!(lines[3].trim().starts_with("write fence:"));
        assert_eq!(
            lines[4],
            "1 dma-buf(s), 65536 bytes; 10 process(es) read, 3 not readable by this user (skipped)"
        );
        let json = serde_json::to_value(&listing).unwrap();
        assert_eq!(json["dma_bufs"][0]["holders"][0]["fds"], serde_json::json!([5, 7]));
        assert_eq!(json["unreadable_processes"], 3);
    }
}
