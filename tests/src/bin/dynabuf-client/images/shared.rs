//! The shared image of a KIND and the dma-bufs behind it, with the CPU's
//! access to their bytes: through the udmabuf's memfd, or through a
//! mapping of an exported dma-buf.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use ash::vk;
use dynabuf_client::dmabuf::Mapping;
use dynabuf_client::external::file_identity;
use dynabuf_client::image::commands;
use dynabuf_client::image::modifiers::{chosen_layout, offered};
use dynabuf_client::image::{
    dma_buf_size, pixels, requirements_of, Binding, ExternalImage, ImageSpec, Plane, Tiling,
};
use dynabuf_client::kernel::udmabuf;
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Context, Result};

use super::{Kind, KindTiling, Memory};
use crate::robustness::sys;

/// Image size: small enough for TCG, every plane a multiple of 4 bytes.
pub(crate) const WIDTH: u32 = 64;
pub(crate) const HEIGHT: u32 = 32;
const PAGE: u64 = 4096;

/// A dma-buf and the CPU's way to its bytes.
#[derive(Debug)]
pub(crate) struct Dmabuf {
    pub fd: OwnedFd,
    /// The udmabuf's memfd (the same pages); `None`: map the dma-buf.
    memfd: Option<std::fs::File>,
    pub size: u64,
}

impl Dmabuf {
    /// A udmabuf of at least `size` bytes holding [`pixels::old`]'s pattern.
    pub fn udmabuf(size: u64) -> Result<Self> {
        let size = size.next_multiple_of(PAGE);
        let (fd, memfd) = sys(udmabuf::create(size))?;
        let buf = Dmabuf { fd, memfd: Some(memfd.into()), size };
        buf.write_pattern(pixels::old)?;
        Ok(buf)
    }

    /// An exported dma-buf, read and written through a mapping.
    pub fn exported(fd: OwnedFd) -> Result<Self> {
        let size = dma_buf_size(fd.as_fd())?;
        Ok(Dmabuf { fd, memfd: None, size })
    }

    pub fn try_clone(&self) -> Result<Self> {
        let memfd = match &self.memfd {
            Some(m) => Some(m.try_clone().ctx("dup memfd")?),
            None => None,
        };
        Ok(Dmabuf { fd: self.fd.try_clone().ctx("dup dma-buf")?, memfd, size: self.size })
    }

    /// Every byte, as a peer sees them now (no DMA_BUF_IOCTL_SYNC: that
    /// would wait for the fences the tests are about).
    pub fn read(&self) -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; self.size as usize];
        match &self.memfd {
            Some(m) => m.read_exact_at(&mut bytes, 0).ctx("read memfd")?,
            None => {
                let mut map = Mapping::new(self.fd.as_fd(), self.size as usize)?;
                for (dst, w) in bytes.chunks_exact_mut(4).zip(map.words().iter()) {
                    dst.copy_from_slice(&w.to_le_bytes());
                }
            }
        }
        Ok(bytes)
    }

    /// Fills the dma-buf with the word pattern `f`.
    pub fn write_pattern(&self, f: impl Fn(u32) -> u32) -> Result<()> {
        match &self.memfd {
            Some(m) => m.write_all_at(&pixels::pattern(f, self.size), 0).ctx("write memfd"),
            None => {
                let mut map = Mapping::new(self.fd.as_fd(), self.size as usize)?;
                map.words().iter_mut().enumerate().for_each(|(i, w)| *w = f(i as u32));
                Ok(())
            }
        }
    }
}

/// An image of a KIND bound to its dma-bufs.
pub(crate) struct Shared {
    pub kind: Kind,
    pub image: ExternalImage,
    pub planes: Vec<Plane>,
    /// The distinct dma-bufs, in the order of the bindings that use them.
    pub bufs: Vec<Dmabuf>,
    /// For each binding, its index in `bufs`.
    buf_of_binding: Vec<usize>,
}

impl Shared {
    pub fn new(c: &Client, kind: Kind) -> Result<Shared> {
        let disjoint = matches!(kind.memory, Memory::Disjoint | Memory::DisjointOne);
        let planes = dynabuf_client::image::planar::planes(kind.format, kind.width, kind.height);
        let tiling = match kind.tiling {
            KindTiling::Linear => Tiling::Linear,
            KindTiling::Modifier(modifier, layout) => {
                let planes = planes.iter().map(|p| chosen_layout(p, layout)).collect();
                Tiling::Explicit { modifier, planes }
            }
            KindTiling::Export => {
                Tiling::AnyOf(offered(c, kind.format).iter().map(|m| m.drm_format_modifier).collect())
            }
        };
        let spec =
            ImageSpec { format: kind.format, width: kind.width, height: kind.height, tiling, disjoint };
        if kind.tiling == KindTiling::Export {
            let image = ExternalImage::exportable(c, spec)?;
            let fd = image.export_fd(c).and_then(Dmabuf::exported);
            let buf = match fd {
                Ok(b) => b,
                Err(e) => {
                    image.destroy(c);
                    return Err(e);
                }
            };
            buf.write_pattern(pixels::old)?;
            return Ok(Shared { kind, image, planes, bufs: vec![buf], buf_of_binding: vec![0] });
        }
        let reqs = requirements_of(c, &spec)?;
        let (bufs, buf_of_binding, offsets) = match kind.memory {
            Memory::Whole => {
                let size = match &spec.tiling {
                    Tiling::Explicit { planes, .. } => {
                        planes.iter().map(|l| l.offset + l.size).max().unwrap_or(0)
                    }
                    _ => reqs[0].size,
                };
                (vec![Dmabuf::udmabuf(size)?], vec![0], vec![0])
            }
            Memory::Disjoint => {
                let bufs = reqs.iter().map(|r| Dmabuf::udmabuf(r.size)).collect::<Result<Vec<_>>>()?;
                (bufs, (0..reqs.len()).collect(), vec![0; reqs.len()])
            }
            Memory::DisjointOne => {
                let mut offsets = Vec::new();
                let mut end = 0u64;
                for r in &reqs {
                    let at = end.next_multiple_of(r.alignment.max(PAGE));
                    offsets.push(at);
                    end = at + r.size;
                }
                (vec![Dmabuf::udmabuf(end)?], vec![0; reqs.len()], offsets)
            }
        };
        let bindings: Vec<Binding<'_>> = buf_of_binding
            .iter()
            .zip(&offsets)
            .map(|(&b, &offset)| Binding { fd: bufs[b].fd.as_fd(), offset })
            .collect();
        let image = ExternalImage::import(c, spec, &bindings)?;
        Ok(Shared { kind, image, planes, bufs, buf_of_binding })
    }

    /// The dma-buf plane `i` lies in.
    pub fn buf_of_plane(&self, i: usize) -> &Dmabuf {
        &self.bufs[self.buf_of_binding[self.image.layouts[i].binding]]
    }

    /// The index in `bufs` of plane `i`'s dma-buf.
    pub fn buf_index_of_plane(&self, i: usize) -> usize {
        self.buf_of_binding[self.image.layouts[i].binding]
    }

    /// Plane `i`'s packed texels as its dma-buf holds them now.
    pub fn plane_now(&self, i: usize) -> Result<Vec<u8>> {
        pixels::plane_bytes(&self.buf_of_plane(i).read()?, &self.planes[i], &self.image.layouts[i])
    }

    /// Plane `i`'s packed texels when its dma-buf holds the pattern `f`.
    pub fn plane_with(&self, i: usize, f: fn(u32) -> u32) -> Result<Vec<u8>> {
        let bytes = pixels::pattern(f, self.buf_of_plane(i).size);
        pixels::plane_bytes(&bytes, &self.planes[i], &self.image.layouts[i])
    }

    /// Moves the image from `UNDEFINED` to `GENERAL` (its first use; on
    /// lavapipe the content stays) and waits.
    pub fn to_general(&self, c: &Client) -> Result<()> {
        let layouts = (vk::ImageLayout::UNDEFINED, vk::ImageLayout::GENERAL);
        let (image, color) = (self.image.image, vk::ImageAspectFlags::COLOR);
        commands::run_once(c, |d, cb| commands::transition(d, cb, image, color, layouts))
    }

    /// How the image and its planes lie, for reports: `bufK=DEV:INO/SIZE`
    /// per dma-buf (the layer names dma-bufs `dma-buf DEV:INO`), the
    /// modifier, and `planeI=bufK@OFFSET+pitchP/sizeS` per plane.
    pub fn describe(&self, c: &Client) -> String {
        let modifier = match self.kind.tiling {
            KindTiling::Linear => String::new(),
            _ => match dynabuf_client::image::modifiers::modifier_of(c, &self.image) {
                Ok(m) => format!(" modifier={m:#x}"),
                Err(e) => format!(" modifier=({e})"),
            },
        };
        let planes: Vec<String> = (0..self.planes.len())
            .map(|i| {
                let l = self.image.layouts[i];
                format!(
                    "plane{i}=buf{}@{}+pitch{}/size{}",
                    self.buf_index_of_plane(i),
                    l.offset,
                    l.row_pitch,
                    l.size
                )
            })
            .collect();
        let bufs: Vec<String> = self
            .bufs
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let (dev, ino) = file_identity(b.fd.as_raw_fd()).unwrap_or_default();
                format!("buf{k}={dev}:{ino}/{}", b.size)
            })
            .collect();
        format!("{}{modifier} {}", bufs.join(" "), planes.join(" "))
    }

    pub fn destroy(self, c: &Client) {
        self.image.destroy(c);
    }
}
