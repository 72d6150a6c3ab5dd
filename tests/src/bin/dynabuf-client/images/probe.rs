//! What the driver supports for shared images: `image-probe` asks (format
//! features, modifiers, external memory), `image-ops` tries each transfer
//! operation on an imported image of a KIND and checks the pixels.

use ash::vk;
use dynabuf_client::image::commands::{self, run_once, Staging};
use dynabuf_client::image::modifiers::{importable, offered, offered2};
use dynabuf_client::image::planar::{format_name, planes};
use dynabuf_client::image::{pixels, NV12, RGBA8, YUV420_3P};
use dynabuf_client::vulkan::Client;
use dynabuf_client::{Error, Result};

use super::shared::Shared;
use super::{image_client, scenarios, Kind, Tell};
use crate::robustness::say;

const FORMATS: [vk::Format; 3] = [RGBA8, NV12, YUV420_3P];

/// `image-probe`: one line per question: whether the device offers
/// `VK_EXT_image_drm_format_modifier`; per format, the linear tiling's
/// transfer and `DISJOINT` features and whether a linear (and a linear
/// disjoint) image can live in dma-buf memory; every modifier offered,
/// with its plane count, features and whether it can be imported.
pub fn cmd_image_probe() -> Result<()> {
    let c = image_client()?;
    let drm = c.has_extension(ash::ext::image_drm_format_modifier::NAME);
    say(&format!("device={} image_drm_format_modifier={drm}", c.device_name()));
    for format in FORMATS {
        let name = format_name(format);
        // SAFETY: a physical device of this instance.
        let props = unsafe { c.instance.get_physical_device_format_properties(c.physical, format) };
        let f = props.linear_tiling_features;
        say(&format!(
            "format={name} linear transfer_src={} transfer_dst={} disjoint={}",
            f.contains(vk::FormatFeatureFlags::TRANSFER_SRC),
            f.contains(vk::FormatFeatureFlags::TRANSFER_DST),
            f.contains(vk::FormatFeatureFlags::DISJOINT)
        ));
        for flags in [vk::ImageCreateFlags::empty(), vk::ImageCreateFlags::DISJOINT] {
            let what = if flags.is_empty() { "linear_dma_buf" } else { "linear_disjoint_dma_buf" };
            say(&format!("format={name} {what}={}", linear_external(&c, format, flags)));
        }
        if drm {
            let mods = offered(&c, format);
            let list2: Vec<String> =
                offered2(&c, format).iter().map(|(m, f)| format!("{m:#x}:{f:?}")).collect();
            say(&format!("format={name} modifiers={} list2=[{}]", mods.len(), list2.join(" ")));
            for m in mods {
                let import = match importable(&c, format, m.drm_format_modifier) {
                    Ok(features) => format!("{features:?}"),
                    Err(e) => format!("{e:?}"),
                };
                say(&format!(
                    "format={name} modifier={:#x} planes={} transfer={} import={import}",
                    m.drm_format_modifier,
                    m.drm_format_modifier_plane_count,
                    m.drm_format_modifier_tiling_features.contains(
                        vk::FormatFeatureFlags::TRANSFER_SRC | vk::FormatFeatureFlags::TRANSFER_DST
                    )
                ));
            }
        }
    }
    say("image_probe_ok=true");
    Ok(())
}

/// Whether a linear transfer image of `format` (with `flags`) can live in
/// dma-buf memory: the driver's result or its external memory features.
fn linear_external(c: &Client, format: vk::Format, flags: vk::ImageCreateFlags) -> String {
    let mut external = vk::PhysicalDeviceExternalImageFormatInfo::default()
        .handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(format)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(vk::ImageTiling::LINEAR)
        .usage(vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST)
        .flags(flags)
        .push_next(&mut external);
    let mut external_props = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut external_props);
    // SAFETY: a physical device of this instance, valid in and out chains.
    match unsafe { c.instance.get_physical_device_image_format_properties2(c.physical, &info, &mut props) } {
        Ok(()) => format!("{:?}", external_props.external_memory_properties.external_memory_features),
        Err(e) => format!("{e:?}"),
    }
}

/// `image-ops KIND...`: for each KIND, imports (or exports) an image and,
/// plane by plane, copies a buffer into it, the image into a buffer, and
/// (single plane) clears it, each on its own submission, checking the
/// pixels from the CPU. Says how each plane lies as the driver reports it,
/// `op=NAME plane=I start` before each operation (so a driver crash shows
/// where) and `op=NAME plane=I ok` or `... wrong: WHY` after; a KIND is
/// wrong when any of its operations is.
pub fn cmd_image_ops(args: &[String]) -> Result<()> {
    let c = image_client()?;
    scenarios(args, "image_ops_ok", |tell, fields| {
        let shared = Shared::new(&c, Kind::parse(fields.first())?)?;
        tell.say(&format!("setup {}", shared.describe(&c)));
        for i in 0..shared.planes.len() {
            let r = shared.image.reported_layout(&c, i);
            tell.say(&format!(
                "plane={i} reported offset={} pitch={} size={}",
                r.offset, r.row_pitch, r.size
            ));
        }
        let outcome = Staging::new(&c, &shared.planes).and_then(|mut staging| {
            let r = run_ops(&c, tell, &shared, &mut staging);
            staging.destroy(&c);
            r
        });
        shared.destroy(&c);
        match outcome? {
            0 => Ok(()),
            wrong => Err(Error(format!("{wrong} operation(s) wrong"))),
        }
    })
}

/// Runs every operation on every plane; how many were wrong.
fn run_ops(c: &Client, tell: Tell, shared: &Shared, staging: &mut Staging) -> Result<usize> {
    let image = shared.image.image;
    let general = vk::ImageLayout::GENERAL;
    shared.to_general(c)?;
    let mut wrong = 0;
    for (i, plane) in shared.planes.iter().enumerate() {
        let written = pixels::gpu_plane(i, 0, plane);
        staging.set_plane(i, &written)?;
        let at = staging.at(i);
        let op = || -> Result<Vec<u8>> {
            run_once(c, |d, cb| commands::copy_from_buffer(d, cb, at, (image, general), plane))?;
            shared.plane_now(i)
        };
        wrong += report(tell, "copy-from-buffer", i, op, &written);
        shared.buf_of_plane(i).write_pattern(pixels::new)?;
        let want = shared.plane_with(i, pixels::new)?;
        let mut op = || -> Result<Vec<u8>> {
            run_once(c, |d, cb| {
                commands::copy_to_buffer(d, cb, (image, general), plane, at);
                commands::to_host(d, cb);
            })?;
            staging.plane(i)
        };
        wrong += report(tell, "copy-to-buffer", i, &mut op, &want);
        if planes(shared.kind.format, 2, 2).len() == 1 {
            let op = || -> Result<Vec<u8>> {
                run_once(c, |d, cb| commands::clear(d, cb, (image, general), pixels::clear_color(0)))?;
                shared.plane_now(i)
            };
            wrong += report(tell, "clear", i, op, &pixels::cleared(plane, pixels::clear_color(0)));
        }
    }
    Ok(wrong)
}

/// Runs one operation and says how it went; 1 when it was wrong.
fn report(tell: Tell, name: &str, plane: usize, op: impl FnOnce() -> Result<Vec<u8>>, want: &[u8]) -> usize {
    tell.say(&format!("op={name} plane={plane} start"));
    let verdict = match op() {
        Ok(got) if got == want => "ok".to_string(),
        Ok(got) => {
            let wrong = got.iter().zip(want).filter(|(g, w)| g != w).count();
            format!("wrong: {wrong} of {} bytes differ", want.len())
        }
        Err(e) => format!("wrong: {e}"),
    };
    tell.say(&format!("op={name} plane={plane} {verdict}"));
    usize::from(verdict != "ok")
}
