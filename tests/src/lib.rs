//! dynabuf's Vulkan test client: a small, ordinary Vulkan application (ash +
//! gpu-allocator) that the integration tests, the benchmarks and the demo
//! run through the real loader, with and without the layer.
//!
//! * [`env`]: where the freshly built layer and lavapipe are, and the
//!   environment that enables the layer for a child process;
//! * [`vulkan`]: instance, device, queues and allocator;
//! * [`compute`]: storage buffers and the compute shaders from `shaders/`;
//! * [`shaders`]: the SPIR-V compiled from `shaders/` at build time;
//! * [`image`]: images (RGBA8, NV12, three-plane) in dma-bufs, their
//!   planes' layouts, ownership transfers naming planes;
//! * [`render`]: the demo's shared image, graphics pipeline and sampling
//!   pass; [`scenario`]: the demo's frames;
//! * [`contact_sheet`]: the demo's frames as PNG contact sheets;
//! * [`measure`]: medians and interleaved rounds for the benchmarks;
//! * [`kernel`]: udmabuf, vgem and syncobj helpers only tests need.

pub mod compute;
pub mod contact_sheet;
pub mod dmabuf;
pub mod env;
pub mod external;
pub mod image;
pub mod kernel;
pub mod measure;
pub mod pingpong;
pub mod render;
pub mod scenario;
pub mod shaders;
pub mod vulkan;

/// Errors of the client: a message with the failing call.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Adds the failing call's name to a Vulkan or allocator error.
pub trait Context<T> {
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T, E: std::fmt::Debug> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(|e| Error(format!("{what}: {e:?}")))
    }
}
