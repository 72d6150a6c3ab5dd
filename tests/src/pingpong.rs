//! Two processes passing one dma-buf back and forth: the first exports it
//! from its device and sends the fd over a unix socket (SCM_RIGHTS); each
//! frame, each side's GPU acquires the buffer from FOREIGN, adds 1 to every
//! value and releases it, then passes a token. Neither side does any
//! sync-file work; both verify every frame.
//!
//! [`Handover::AfterOwnFence`] waits for its own fence before passing the
//! token, so program order alone serialises the two GPUs (the test passes
//! without the layer too); [`Handover::AtSubmit`] passes it as soon as
//! `vkQueueSubmit` returns, and the peer relies on the fence released into
//! the dma-buf: its GPU's acquire waits for it, and its CPU check first
//! `poll()`s the dma-buf as any reader would.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use ash::vk;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::compute::{Kernel, Shader};
use crate::dmabuf::{foreign_job, import_fd, wait_for_writers, AcquireKind};
use crate::external::ExternalBuffer;
use crate::vulkan::{Client, ClientOptions};
use crate::{Context, Error, Result};

pub const LEN: u32 = 1024;

pub fn send_fd(sock: &UnixStream, fd: RawFd) -> Result<()> {
    let fds = [fd];
    let iov = [std::io::IoSlice::new(b"F")];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .ctx("sendmsg")?;
    Ok(())
}

pub fn recv_fd(sock: &UnixStream) -> Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg =
        recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).ctx("recvmsg")?;
    for c in msg.cmsgs().ctx("cmsgs")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS gave this process a new fd it owns.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error("no fd in the message".into()))
}

fn token(sock: &mut UnixStream, frame: u32) -> Result<()> {
    sock.write_all(&frame.to_le_bytes()).ctx("send token")
}

fn await_token(sock: &mut UnixStream) -> Result<u32> {
    let mut b = [0u8; 4];
    sock.read_exact(&mut b).ctx("receive token")?;
    Ok(u32::from_le_bytes(b))
}

/// How a side hands the buffer to its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handover {
    /// After its own fence signalled (the work is done).
    AfterOwnFence,
    /// As soon as `vkQueueSubmit` returns; the peer relies on the released
    /// dma-buf fence.
    AtSubmit,
}

impl Handover {
    /// `wait` or `nowait`, as the client's arguments say.
    pub fn parse(arg: Option<&str>) -> Result<Handover> {
        match arg {
            None | Some("wait") => Ok(Handover::AfterOwnFence),
            Some("nowait") => Ok(Handover::AtSubmit),
            Some(other) => Err(Error(format!("handover {other:?}: expected wait or nowait"))),
        }
    }

    pub fn arg(self) -> &'static str {
        match self {
            Handover::AfterOwnFence => "wait",
            Handover::AtSubmit => "nowait",
        }
    }
}

fn check(c: &Client, b: &ExternalBuffer, want_add: u32, who: &str, frame: u32) -> Result<()> {
    let v = b.host_access(c, None)?;
    match (0..b.len).find(|&i| v[i as usize] != i + want_add) {
        Some(i) => Err(Error(format!(
            "{who}, frame {frame}: data[{i}] = {}, expected {}",
            v[i as usize],
            i + want_add
        ))),
        None => Ok(()),
    }
}

/// One side: `first` exports and sends the buffer; the other receives it.
pub fn run(sock: UnixStream, frames: u32, first: bool) -> Result<()> {
    run_with(sock, frames, first, LEN, Handover::AfterOwnFence)
}

/// [`run`] over `len` values, handing over as `handover` says.
pub fn run_with(mut sock: UnixStream, frames: u32, first: bool, len: u32, handover: Handover) -> Result<()> {
    let c = Client::new(&ClientOptions::default())?;
    let dma_buf = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;
    let (buffer, fd) = if first {
        let b = ExternalBuffer::exportable(&c, len, dma_buf)?;
        b.host_access(&c, Some(&(0..len).collect::<Vec<_>>()))?;
        let fd = b.export_fd(&c)?;
        send_fd(&sock, fd.as_raw_fd())?;
        (b, fd)
    } else {
        let fd = recv_fd(&sock)?;
        (import_fd(&c, fd.as_fd(), len)?, fd)
    };
    let kernel = Kernel::new(&c, Shader::Increment)?;
    let job = foreign_job(&c, &kernel, buffer.buffer, AcquireKind::Write, 1, len)?;
    let who = if first { "exporter" } else { "importer" };
    let mut pending = false;
    // The CPU check: after the peer handed over at submit, wait for the
    // dma-buf's write fences first, as any reader would.
    let checked = |want_add: u32, frame: u32| -> Result<()> {
        if handover == Handover::AtSubmit
            && !wait_for_writers(fd.as_fd(), std::time::Duration::from_secs(10))?
        {
            return Err(Error(format!("{who}, frame {frame}: the dma-buf stayed busy for 10 s")));
        }
        check(&c, &buffer, want_add, who, frame)
    };
    let step = |pending: &mut bool| -> Result<()> {
        match handover {
            Handover::AfterOwnFence => job.run(&c, c.queues[0]),
            Handover::AtSubmit => {
                if std::mem::take(pending) {
                    job.wait(&c)?;
                }
                job.submit(&c, c.queues[0])?;
                *pending = true;
                Ok(())
            }
        }
    };
    let outcome = (|| {
        for frame in 0..frames {
            if first {
                checked(2 * frame, frame)?;
                step(&mut pending)?;
                token(&mut sock, frame)?;
                let back = await_token(&mut sock)?;
                if back != frame {
                    return Err(Error(format!("token {back} for frame {frame}")));
                }
            } else {
                let got = await_token(&mut sock)?;
                if got != frame {
                    return Err(Error(format!("token {got} for frame {frame}")));
                }
                checked(2 * frame + 1, frame)?;
                step(&mut pending)?;
                token(&mut sock, frame)?;
            }
        }
        if first {
            checked(2 * frames, frames)?;
        }
        Ok(())
    })();
    if pending {
        let _ = job.wait(&c);
    }
    job.destroy(&c);
    kernel.destroy(&c);
    buffer.destroy(&c);
    outcome
}
