//! `dynabuf-validation-canary [CHILDREN]`: a Vulkan client that makes one
//! known mistake, for `tests/tests/validation.rs` to prove that the
//! validation layer's messages reach the test, from every process: it
//! starts CHILDREN copies of itself (which inherit its environment, stdout
//! and stderr, as `dynabuf-client pingpong`'s peer does), and each process
//! creates a buffer with no usage flags
//! (`VUID-VkBufferCreateInfo-usage-requiredbitmask`; validation reports it
//! and passes the call on, and lavapipe takes it). Prints
//! `create_buffer=RESULT` per process and `canary_processes=N` at the end.

use std::process::ExitCode;

use ash::vk;
use dynabuf_client::vulkan::{Client, ClientOptions};
use dynabuf_client::{Context, Error, Result};

/// The message ID each process makes validation report.
const CANARY_ID: &str = "VUID-VkBufferCreateInfo-usage-requiredbitmask";

fn run(children: u32) -> Result<u32> {
    let exe = std::env::current_exe().ctx("current_exe")?;
    let spawned: Vec<_> = (0..children)
        .map(|_| std::process::Command::new(&exe).arg("0").spawn().ctx("spawn a canary child"))
        .collect::<Result<_>>()?;
    let c = Client::new(&ClientOptions::default())?;
    // The mistake: a buffer with no usage.
    let info = vk::BufferCreateInfo::default().size(256).sharing_mode(vk::SharingMode::EXCLUSIVE);
    // SAFETY: a valid device and a complete create info; only its usage is
    // invalid, which lavapipe tolerates (it creates the buffer).
    match unsafe { c.device.create_buffer(&info, None) } {
        Ok(buffer) => {
            println!("create_buffer=SUCCESS");
            // SAFETY: the buffer just created, unused.
            unsafe { c.device.destroy_buffer(buffer, None) };
        }
        Err(e) => println!("create_buffer={e:?}"),
    }
    let mut processes = 1;
    for mut child in spawned {
        let status = child.wait().ctx("wait for a canary child")?;
        if !status.success() {
            return Err(Error(format!("a canary child failed: {status}")));
        }
        processes += 1;
    }
    Ok(processes)
}

fn main() -> ExitCode {
    let children = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    match run(children) {
        Ok(processes) => {
            if children > 0 {
                println!("canary_processes={processes} canary_id={CANARY_ID}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("canary: failed: {e}");
            ExitCode::FAILURE
        }
    }
}
