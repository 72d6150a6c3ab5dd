//! What debugfs (`/sys/kernel/debug/dma_buf/bufinfo`, root only) adds to
//! `ls`: every dma-buf the kernel has, with its attached devices (the
//! layer's parser, `dynabuf::sys::dma_buf_debugfs`) and its fences (the
//! lines that parser passes over: `\t<usage> fence:<driver> <timeline>
//! seq N [un]signalled`, shown with a space after the colon).

use std::collections::{BTreeMap, HashMap};

use dynabuf::sys::dma_buf_debugfs::{self, BufInfo};

/// One buffer of the list, with its fences.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    pub info: BufInfo,
    pub name: Option<String>,
    pub fences: Vec<String>,
}

/// A buffer line's inode and name (`size\tflags\tmode\tcount\texp_name\tino\tname`).
fn header(line: &str) -> Option<(u64, Option<String>)> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() < 6 || fields[0].trim().parse::<u64>().is_err() {
        return None;
    }
    let ino = fields[5].trim().parse().ok()?;
    // Linux prints `<none>` for a buffer nobody named.
    let name = fields.get(6).map(|n| n.trim().to_string()).filter(|n| !n.is_empty() && n != "<none>");
    Some((ino, name))
}

/// The fence lines of each buffer, by inode.
fn fences_and_names(text: &str) -> HashMap<u64, (Option<String>, Vec<String>)> {
    let mut out: HashMap<u64, (Option<String>, Vec<String>)> = HashMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('\t') {
            if let (Some(ino), Some((usage, fence))) = (current, rest.split_once("fence:")) {
                // Linux prints `write fence:<driver> <timeline> seq N ...`.
                let line = format!("{}fence: {}", usage.trim_start(), fence.trim());
                out.entry(ino).or_default().1.push(line);
            }
            continue;
        }
        current = header(line).map(|(ino, name)| {
            out.entry(ino).or_default().0 = name;
            ino
        });
    }
    out
}

/// Parses the list: attached devices through the layer's parser, fences
/// and names from the same text.
pub fn parse(text: &str) -> BTreeMap<u64, Listed> {
    let mut extra = fences_and_names(text);
    dma_buf_debugfs::parse(text)
        .into_iter()
        .map(|(ino, info)| {
            let (name, fences) = extra.remove(&ino).unwrap_or_default();
            (ino, Listed { info, name, fences })
        })
        .collect()
}

/// The list, when this process may read it.
pub fn read() -> Option<BTreeMap<u64, Listed>> {
    std::fs::read_to_string(dma_buf_debugfs::BUFINFO).ok().map(|t| parse(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Linux 6.12's `dma_buf_debug_show` and `dma_resv_describe` print it.
    const SAMPLE: &str = "\nDma-buf Objects:\n\
size    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n\
00004096\t00000002\t00080007\t00000003\tudmabuf\t00000042\t<none>\n\
\tAttached Devices:\n\
Total 0 devices attached\n\n\
00065536\t00000002\t00080007\t00000004\tudmabuf\t00000043\tframes\n\
\twrite fence:vgem vgem_fence seq 1 unsignalled\n\
\tread fence: vgem vgem_fence seq 2 signalled\n\
\tAttached Devices:\n\
\tvgem\n\
Total 1 devices attached\n\n\
\nTotal 2 objects, 69632 bytes\n";

    #[test]
    fn attachments_fences_and_names_are_read() {
        let list = parse(SAMPLE);
        assert_eq!(list.len(), 2);
        assert!(list[&42].fences.is_empty() && list[&42].name.is_none());
        let b = &list[&43];
        assert_eq!((b.info.size, b.info.exporter.as_str()), (65536, "udmabuf"));
        assert_eq!(b.info.attached, vec!["vgem".to_string()]);
        assert_eq!(b.name.as_deref(), Some("frames"));
        assert_eq!(
            b.fences,
            vec![
                "write fence: vgem vgem_fence seq 1 unsignalled",
                "read fence: vgem vgem_fence seq 2 signalled"
            ]
        );
        assert!(parse("nothing here\n").is_empty());
    }
}
