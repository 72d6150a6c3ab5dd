//! Subcommands sharing *images* through dma-bufs (kernel tier; issue 9):
//! what lavapipe supports (`image-probe`, `image-ops`), acquires that must
//! wait for a foreign fence (`image-acquire`), releases a peer must be
//! able to wait for (`image-release`), and barriers naming single planes
//! of disjoint images (`image-planes`).
//!
//! Each subcommand runs every SCENARIO it is given (comma-separated
//! fields, the first a KIND) on one device, one after the other, prefixing
//! what it prints with `scenario=N` and ending each with `scenario=N ok`
//! or `scenario=N wrong: WHY`; it ends with `image_<sub>_ok=true`, or
//! fails when a scenario was wrong. A KIND is `FORMAT:TILING:MEMORY`:
//! - FORMAT: `rgba8`, `nv12` or `yuv420-3p`;
//! - TILING: `linear`; `mod=N[/OFFSET/PITCH]`, DRM-format-modifier
//!   tiling with modifier N (decimal or 0x hex) and plane 0 at OFFSET with
//!   rows of PITCH bytes (default: 0 and the row size rounded up to 256),
//!   the client's choice (`VkImageDrmFormatModifierExplicitCreateInfoEXT`);
//!   or `export`, an
//!   exportable image whose modifier the driver picks among all it offers
//!   (`VkImageDrmFormatModifierListCreateInfoEXT`), described to the CPU
//!   side by `vkGetImageDrmFormatModifierPropertiesEXT` and
//!   `vkGetImageSubresourceLayout(MEMORY_PLANE_0)`;
//! - MEMORY: `whole` (one memory), `disjoint` (`DISJOINT` planes, each in
//!   a udmabuf of its own) or `disjoint-one` (`DISJOINT` planes bound at
//!   page-aligned offsets of one udmabuf imported once per plane);
//! - and optionally `:WxH`, the size (default 64x32).
//!
//! The dma-bufs start with [`pixels::old`]'s pattern; a foreign writer
//! (the client's own thread with a vgem fence, as a compositor or decoder
//! would be) writes [`pixels::new`]'s.

mod acquire;
mod dynamic;
mod probe;
mod release;
mod shared;

pub use acquire::*;
pub use dynamic::*;
pub use probe::*;
pub use release::*;

use std::ffi::CString;
use std::time::{Duration, Instant};

use ash::vk;
use dynabuf_client::image::planar::format_named;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Error, Result};

use crate::robustness::{say, HeldFence};
use shared::Dmabuf;

/// How the shared image is made (the module's KIND).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kind {
    pub format: vk::Format,
    pub tiling: KindTiling,
    pub memory: Memory,
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KindTiling {
    Linear,
    /// A modifier, and plane 0's offset and row pitch if not the default.
    Modifier(u64, Option<(u64, u64)>),
    Export,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Memory {
    Whole,
    Disjoint,
    DisjointOne,
}

impl Kind {
    pub fn parse(s: Option<&&str>) -> Result<Kind> {
        let s = s.ok_or_else(|| Error("missing KIND (FORMAT:TILING:MEMORY[:WxH])".into()))?;
        let bad = || Error(format!("KIND {s:?}: expected FORMAT:TILING:MEMORY[:WxH]"));
        let parts: Vec<&str> = s.split(':').collect();
        if !(3..=4).contains(&parts.len()) {
            return Err(bad());
        }
        let format = format_named(parts[0]).ok_or_else(bad)?;
        let number = |n: &str| match n.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).map_err(|_| bad()),
            None => n.parse().map_err(|_| bad()),
        };
        let tiling = match parts[1] {
            "linear" => KindTiling::Linear,
            "export" => KindTiling::Export,
            t => {
                let fields: Vec<&str> = t.strip_prefix("mod=").ok_or_else(bad)?.split('/').collect();
                let layout = match fields.len() {
                    1 => None,
                    3 => Some((number(fields[1])?, number(fields[2])?)),
                    _ => return Err(bad()),
                };
                KindTiling::Modifier(number(fields[0])?, layout)
            }
        };
        let memory = match parts[2] {
            "whole" => Memory::Whole,
            "disjoint" => Memory::Disjoint,
            "disjoint-one" => Memory::DisjointOne,
            _ => return Err(bad()),
        };
        let (width, height) = match parts.get(3) {
            Some(size) => {
                let (w, h) = size.split_once('x').ok_or_else(bad)?;
                (number(w)? as u32, number(h)? as u32)
            }
            None => (shared::WIDTH, shared::HEIGHT),
        };
        Ok(Kind { format, tiling, memory, width, height })
    }
}

/// What one scenario prints: `scenario=N LINE`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tell(pub usize);

impl Tell {
    pub fn say(self, line: &str) {
        say(&format!("scenario={} {line}", self.0));
    }
}

/// Runs `one` for each SCENARIO argument (its comma-separated fields) and
/// says how each went; `KEY=true` at the end when every one was right.
pub(crate) fn scenarios(
    args: &[String],
    key: &str,
    mut one: impl FnMut(Tell, &[&str]) -> Result<()>,
) -> Result<()> {
    if args.is_empty() {
        return Err(Error("no SCENARIO given".into()));
    }
    let mut wrong = 0;
    for (n, arg) in args.iter().enumerate() {
        let fields: Vec<&str> = arg.split(',').collect();
        match one(Tell(n), &fields) {
            Ok(()) => Tell(n).say("ok"),
            Err(e) => {
                wrong += 1;
                Tell(n).say(&format!("wrong: {}", e.0.replace('\n', " ")));
            }
        }
    }
    if wrong > 0 {
        return Err(Error(format!("{wrong} of {} scenario(s) wrong", args.len())));
    }
    say(&format!("{key}=true"));
    Ok(())
}

/// A client whose device also enables the image extensions (where offered).
pub(crate) fn image_client() -> Result<Client> {
    Client::new(&ClientOptions {
        extra_extensions: vec![
            CString::from(ash::ext::image_drm_format_modifier::NAME),
            CString::from(ash::khr::image_format_list::NAME),
        ],
        ..Default::default()
    })
}

/// A foreign fence (vgem) held on a dma-buf by another thread that, after
/// `delay`, writes [`pixels::new`]'s pattern there (when `content`) and
/// signals: a foreign device finishing its frame.
///
/// [`pixels::new`]: dynabuf_client::image::pixels::new
pub(crate) struct Foreign {
    thread: std::thread::JoinHandle<Result<Instant>>,
}

impl Foreign {
    pub fn start(buf: &Dmabuf, write: bool, delay: Duration, content: bool) -> Result<Self> {
        Self::writing(buf, write, delay, content.then_some(dynabuf_client::image::pixels::new))
    }

    /// As [`Foreign::start`], writing the word pattern `content` (if any).
    pub fn writing(
        buf: &Dmabuf,
        write: bool,
        delay: Duration,
        content: Option<impl Fn(u32) -> u32 + Send + 'static>,
    ) -> Result<Self> {
        let fence = HeldFence::on(std::os::fd::AsFd::as_fd(&buf.fd), write)?;
        let target = buf.try_clone()?;
        let thread = std::thread::spawn(move || {
            std::thread::sleep(delay);
            let written = match content {
                Some(f) => target.write_pattern(f),
                None => Ok(()),
            };
            let at = Instant::now();
            fence.signal()?;
            written.map(|_| at)
        });
        Ok(Foreign { thread })
    }

    /// When the fence was signalled.
    pub fn join(self) -> Result<Instant> {
        self.thread.join().map_err(|_| Error("the foreign writer panicked".into()))?
    }
}

/// The aspect mask an argument names: `color`, `planes` (every plane bit),
/// `p0`, `p1`, `p2` or a `+`-joined list of them.
pub(crate) fn aspect_named(format: vk::Format, s: &str) -> Result<vk::ImageAspectFlags> {
    use dynabuf_client::image::planar::{all_planes, plane_aspect};
    s.split('+').try_fold(vk::ImageAspectFlags::empty(), |acc, part| {
        Ok(acc
            | match part {
                "color" => vk::ImageAspectFlags::COLOR,
                "planes" => all_planes(format),
                "p0" => plane_aspect(0),
                "p1" => plane_aspect(1),
                "p2" => plane_aspect(2),
                _ => return Err(Error(format!("aspect {part:?}: expected color, planes, p0, p1 or p2"))),
            })
    })
}

/// The planes `aspect` names: every plane for `COLOR`, else those whose
/// `PLANE_i` bit it has.
pub(crate) fn covered(shared: &shared::Shared, aspect: vk::ImageAspectFlags) -> Vec<usize> {
    (0..shared.planes.len())
        .filter(|&i| aspect.contains(vk::ImageAspectFlags::COLOR) || aspect.contains(shared.planes[i].aspect))
        .collect()
}

/// The dma-bufs (indices in `shared.bufs`) a FENCED argument names:
/// `all`, or `pK`, plane K's.
pub(crate) fn fenced_bufs(shared: &shared::Shared, s: &str) -> Result<Vec<usize>> {
    if s == "all" {
        return Ok((0..shared.bufs.len()).collect());
    }
    let plane: usize = s
        .strip_prefix('p')
        .and_then(|n| n.parse().ok())
        .filter(|&p| p < shared.planes.len())
        .ok_or_else(|| Error(format!("FENCED {s:?}: expected all or pK for a plane K of the image")))?;
    Ok(vec![shared.buf_index_of_plane(plane)])
}
