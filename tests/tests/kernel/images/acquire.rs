//! Acquires of whole images from FOREIGN while foreign fences are pending
//! on their dma-bufs.

use super::{check_run, kinds, run_scenarios, short, Problems};
use crate::harness::TestResult;
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

/// What the same scenario must show without the layer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Control {
    /// The GPU reads (or keeps) stale pixels: its verdict contains this.
    Stale(&'static str),
    /// It is right but finishes early (the check on waiting can fail).
    Early,
    /// None: what the layer must not do (wait) is what happens without it.
    None,
}

/// One `image-acquire` scenario (`KIND,MODE,ASPECT,FENCED`), whether it
/// must finish before the foreign fence signals, and its control.
pub(crate) struct Acquire {
    pub scenario: String,
    pub early: bool,
    pub control: Control,
}

impl Acquire {
    pub fn new(fields: [&str; 4], early: bool, control: Control) -> Self {
        Acquire { scenario: fields.join(","), early, control }
    }
}

/// Runs every scenario under the layer (each must be exact and finish
/// `early` as said), then those with a control without it (each must show
/// its control), two client processes in all.
pub(crate) fn acquires(problems: &mut Problems, list: &[Acquire]) {
    let all: Vec<String> = list.iter().map(|a| a.scenario.clone()).collect();
    let (on, said) = run_scenarios("image-acquire", &all, Layer::On, &[("DYNABUF_LOG", "debug")]);
    for (a, s) in list.iter().zip(&said) {
        let early = s.value("early") == Some("true");
        println!("  {}: {}, early={early}", a.scenario, s.verdict());
        let how = match (s.ok(), early == a.early) {
            (false, _) => "is wrong",
            (true, false) if a.early => "waited for a fence it should not wait for",
            (true, false) => "did not wait",
            (true, true) => continue,
        };
        problems
            .check(false, || format!("{}: under the layer the acquire {how}: {}", a.scenario, s.verdict()));
    }
    check_run(problems, &on, &said, "image-acquire under the layer");
    let controlled: Vec<&Acquire> = list.iter().filter(|a| !matches!(a.control, Control::None)).collect();
    if controlled.is_empty() {
        return;
    }
    let args: Vec<String> = controlled.iter().map(|a| a.scenario.clone()).collect();
    let (off, said) = run_scenarios("image-acquire", &args, Layer::Off, &[]);
    check_run(problems, &off, &said, "image-acquire without the layer");
    for (a, s) in controlled.iter().zip(&said) {
        let early = s.value("early").unwrap_or("?");
        println!("  {} without the layer: {}, early={early}", a.scenario, short(&s.verdict()));
        let shown = match a.control {
            Control::Stale(stale) => !s.ok() && s.verdict().contains(stale),
            Control::Early => s.ok() && s.value("early") == Some("true"),
            Control::None => true,
        };
        problems.check(shown, || {
            format!(
                "{}: without the layer it should show {:?}, it said: {:?}",
                a.scenario, a.control, s.lines
            )
        });
    }
}

pub fn an_acquire_of_an_image_waits_for_foreign_write_fences_on_its_dma_bufs() -> TestResult {
    require_kernel_tier!();
    // Every kind: a foreign writer holds a write fence on each of the
    // image's dma-bufs and writes new content into it 300 ms after the
    // client's submission (the first plane's dma-buf 200 ms later than the
    // next), then signals; the client's GPU copies every plane to a
    // buffer after an acquire of the whole image (COLOR). Under the layer
    // it reads the new content; without it, the old.
    let mut problems = Problems::default();
    let list: Vec<Acquire> = kinds()?
        .iter()
        .map(|k| Acquire::new([k, "read", "color", "all"], false, Control::Stale("all old content")))
        .collect();
    acquires(&mut problems, &list);
    problems.into_result()
}

pub fn an_acquire_of_an_image_for_writing_waits_before_it_writes() -> TestResult {
    require_kernel_tier!();
    // As above, but the GPU writes every plane (a copy from a buffer)
    // after the acquire: under the layer its texels come after the foreign
    // writer's and stay; without it the foreign writer's late write covers
    // them.
    let mut problems = Problems::default();
    let explicit = kinds()?.into_iter().find(|k| k.contains(":mod=")).unwrap_or_default();
    let list: Vec<Acquire> = [
        "rgba8:linear:whole",
        &explicit,
        "rgba8:export:whole",
        "nv12:linear:whole",
        "yuv420-3p:linear:disjoint",
    ]
    .iter()
    .map(|k| Acquire::new([k, "write", "color", "all"], false, Control::Stale("all new content")))
    .collect();
    acquires(&mut problems, &list);
    problems.into_result()
}

pub fn a_layout_transition_in_an_acquire_waits_for_foreign_readers() -> TestResult {
    require_kernel_tier!();
    // A foreign *read* fence is pending; the client's acquire only reads
    // (destination access TRANSFER_READ). With a layout transition
    // (GENERAL to TRANSFER_SRC_OPTIMAL) the acquire writes the image, so
    // it must wait for the reader (without the layer it does not); without
    // one it must not wait.
    let mut problems = Problems::default();
    let mut list = Vec::new();
    for kind in ["rgba8:linear:whole", "nv12:linear:disjoint"] {
        list.push(Acquire::new([kind, "transition", "color", "all"], false, Control::Early));
        list.push(Acquire::new([kind, "keep", "color", "all"], true, Control::None));
    }
    acquires(&mut problems, &list);
    problems.into_result()
}
